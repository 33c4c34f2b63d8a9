"""What a release has to do to a service's database schema: pure decisions, no engine, no target.

The migration step (components/migrations.py) keeps, per service, the *chain* of migrations that
are applied, oldest first, in its own state (the one-off command's output). A release that asks
for version V either finds V on the chain below the top (a rollback: undo every migration above
it, newest first) or does not (a release forward: run V's migration with V's image). Undoing a
reversible migration runs its down command with the image that applied it (the newer one); an
irreversible one can only be undone by restoring the database from the backup taken before it
ran (`restored`). `deployctl rollback` asks the same question of the same function before it
changes anything, so a refusal there and a refusal in the update say the same thing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence


@dataclass(frozen=True)
class Applied:
    """One migration on the chain: what ran, with which image, and how to undo it."""

    id: str  # "<version>@<unix time applied>": unique, what --restore-data names
    version: str
    image: str
    name: str
    down: tuple[str, ...] | None
    irreversible: bool
    applied_at: float
    database: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Applied":
        down = data.get("down")
        return cls(id=str(data["id"]), version=str(data["version"]), image=str(data["image"]),
                   name=str(data["name"]), down=tuple(down) if down else None,
                   irreversible=bool(data.get("irreversible")), applied_at=float(data["applied_at"]),
                   database=str(data.get("database", "")))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["down"] = list(self.down) if self.down else None
        return data


@dataclass(frozen=True)
class Wanted:
    """The migration the release's configuration declares for the service."""

    version: str
    image: str
    name: str
    command: tuple[str, ...]
    down: tuple[str, ...] | None
    irreversible: bool
    database: str


@dataclass(frozen=True)
class Step:
    kind: Literal["up", "down", "restored"]
    version: str
    image: str
    name: str
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    chain: tuple[Applied, ...]  # the chain once every step has run (an "up" appends when it runs)
    # The irreversible migrations in the way, newest first; the plan must not run when non-empty.
    refused: tuple[Applied, ...] = field(default_factory=tuple)

    @property
    def is_rollback(self) -> bool:
        return any(step.kind != "up" for step in self.steps) or bool(self.refused)

    def refusal(self, service: str) -> str:
        names = ", ".join(f"'{entry.name}' (applied by {service} {entry.version})" for entry in self.refused)
        return (f"{service}: going back to {self.chain[-1].version if self.chain else 'before it'} would cross "
                f"the irreversible migration {names}; its data cannot be migrated back. Restore the database "
                "from the backup taken before that release with `deployctl rollback ... --restore-data` "
                "(data written since is lost), or release a fix forward")


def plan(chain: Sequence[Applied], wanted: Wanted, restored: str | None = None) -> Plan:
    """The steps that take the database from `chain` to what `wanted` needs."""
    chain = tuple(chain)
    if chain and chain[-1].version == wanted.version:
        return Plan(steps=(), chain=chain)  # already there (a change elsewhere in the release)
    below = [index for index, entry in enumerate(chain[:-1]) if entry.version == wanted.version]
    if not below:
        return Plan(steps=(Step("up", wanted.version, wanted.image, wanted.name, wanted.command),), chain=chain)
    keep = below[-1] + 1
    undone = list(reversed(chain[keep:]))
    ids = [entry.id for entry in chain]
    # A restore from the backup taken before migration R undoes R and everything after it.
    restored_from = ids.index(restored) if restored in ids[keep:] else len(chain)
    steps, refused = [], []
    for position, entry in zip(range(len(chain) - 1, keep - 1, -1), undone):
        if position >= restored_from:
            steps.append(Step("restored", entry.version, entry.image, entry.name))
        elif entry.irreversible or not entry.down:
            refused.append(entry)
        else:
            steps.append(Step("down", entry.version, entry.image, entry.name, entry.down))
    return Plan(steps=tuple(steps), chain=chain[:keep], refused=tuple(refused))


RECORD_KEY = "platformMigrations"


def record_text(service: str, chain: Sequence[Applied], ran: Sequence[dict[str, Any]]) -> str:
    """The one line the migration step prints on stdout: kept in its state, read back next time."""
    return json.dumps({RECORD_KEY: {"service": service, "chain": [entry.to_json() for entry in chain],
                                    "ran": list(ran)}}, sort_keys=True)


def parse_record(text: str | None) -> tuple[list[Applied], list[dict[str, Any]]]:
    """The chain and the last run's steps from a previous stdout; empty when there is none."""
    for line in reversed((text or "").splitlines()):
        line = line.strip()
        if not line.startswith("{") or RECORD_KEY not in line:
            continue
        try:
            record = json.loads(line)[RECORD_KEY]
            return [Applied.from_json(entry) for entry in record.get("chain", [])], list(record.get("ran", []))
        except (ValueError, KeyError, TypeError):
            continue
    return [], []
