"""The frame of every operation that changes a stack (deployctl/operations.py, rollbacks.py,
rollout.py): deployctl's lease, what the stack was before, and `pulumi up` with its results in
the release record."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from deployctl.history import Release
from deployctl.lease import LeaseHeld
from deployctl.records import ReleaseRecord
from deployctl.recording import update_results
from deployctl.workspace import DeployError, Engine, UpdateNotStarted


@dataclass(frozen=True)
class Before:
    """The stack as an operation found it: its history and its stack file, byte for byte."""
    releases: list[Release]
    stack_file: bytes | None


@contextmanager
def changing(engine: Engine, stack: str, operation: str) -> Iterator[Before]:
    """The frame of every operation that changes a stack: deployctl's lease on it (a second
    operation is refused at once, naming the holder), the leftovers of an interrupted one
    recovered, and what the stack was before. An update that never started restores the stack
    file, so a refused operation changes nothing, configuration included."""
    try:
        with engine.leases.hold(stack, operation), engine.reads_held():
            engine.recover_interrupted(stack)
            path = engine.stack_file(stack)
            before = Before(releases=engine.releases(stack),
                            stack_file=path.read_bytes() if path.exists() else None)
            try:
                yield before
            except UpdateNotStarted:
                restore_stack_file(engine, stack, before)
                raise
    except LeaseHeld as error:
        raise UpdateNotStarted(str(error)) from None


def restore_stack_file(engine: Engine, stack: str, before: Before) -> None:
    if before.stack_file is not None and engine.stack_file(stack).read_bytes() != before.stack_file:
        engine.stack_file(stack).write_bytes(before.stack_file)
        engine.forget_reads()
        engine.on_notice(f"{stack}: nothing ran, so Pulumi.{stack}.yaml is back as it was")


def newer_than(releases: list[Release], before: list[Release]) -> list[Release]:
    """The updates recorded since `before` was read, by their history numbers (not by counting)."""
    newest = before[-1].number if before else 0
    return [release for release in releases if release.number > newest]


def up(engine: Engine, stack: str, before: Before, message: str, policy_config: Path | None) -> None:
    """`pulumi up`; a failure before any update was recorded is an UpdateNotStarted."""
    try:
        engine.up(stack, message=message, policy_config=policy_config)
    except UpdateNotStarted:
        raise
    except DeployError as failure:
        if not newer_than(engine.releases(stack), before.releases):
            raise UpdateNotStarted(f"{failure}\n(the update did not start: nothing changed)") from None
        raise


def recorded_up(engine: Engine, stack: str, before: Before, record: ReleaseRecord, message: str,
                policy_config: Path | None, phase: str = "update") -> None:
    """`up` with its duration, policy and smoke-test results in the record."""
    failure = None
    try:
        with record.phase(phase):
            up(engine, stack, before, message, policy_config)
    except DeployError as error:
        failure = str(error)
        raise
    finally:
        if not isinstance(failure, str) or "did not start" not in failure:
            update_results(engine, stack, record, failure)
