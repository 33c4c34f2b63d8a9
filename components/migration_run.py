"""The migration step's command (components/migrations.py), run by `pulumi up` where it runs:
`python -m components.migration_run` with the step's settings on stdin.

It reads the chain of applied migrations from its own previous output (PULUMI_COMMAND_STDOUT),
asks components/migration_plan.py what this release needs, runs each step as a one-off job with
that step's image (components/targets/oneoff_jobs.py), and prints the new chain as one JSON line,
which the engine keeps in the state. Any failure exits non-zero: the update stops before any
workload of the database changes version, and the state keeps the previous chain (the migration
ran in one transaction, so the database has it all or nothing of it).
"""

from __future__ import annotations

import json
import os
import sys
import time

from components.migration_plan import Applied, Wanted, parse_record, plan, record_text
from components.targets.jobs import JobError
from components.targets.oneoff_jobs import run_one_off


# Before the migration: wait (at most 60 s) until the database answers through its Service. A
# database that has just started can be unknown to the cluster's DNS for a while (its headless
# Service lists only ready pods, and the answer "no such name" is cached for up to 30 s), which
# would fail the release for nothing. After the wait the command runs anyway and says what is wrong.
WAIT_FOR_DATABASE = ('for i in $(seq 60); do psql -Atqc "select 1" >/dev/null 2>&1 && break; sleep 1; done; '
                     'exec "$@"')


def with_database_wait(command: tuple[str, ...] | list[str]) -> list[str]:
    return ["sh", "-c", WAIT_FOR_DATABASE, "sh", *command]


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main() -> int:
    payload = json.loads(sys.stdin.read())
    service, wanted_data = payload["service"], payload["wanted"]
    wanted = Wanted(version=wanted_data["version"], image=wanted_data["image"], name=wanted_data["name"],
                    command=tuple(wanted_data["command"]),
                    down=tuple(wanted_data["down"]) if wanted_data.get("down") else None,
                    irreversible=bool(wanted_data.get("irreversible")), database=wanted_data["database"])
    chain, _ = parse_record(os.environ.get("PULUMI_COMMAND_STDOUT"))
    decided = plan(chain, wanted, payload.get("restored"))
    if decided.refused:
        _say(f"migration refused: {decided.refusal(service)}; the update stops here, before any workload changes")
        return 1
    applied, ran = list(decided.chain), []
    for step in decided.steps:
        if step.kind == "restored":
            _say(f"{service}: migration '{step.name}' of {step.version} is undone by the database restore")
            ran.append({"kind": "restored", "name": step.name, "version": step.version})
            continue
        _say(f"{service}: {step.kind} migration '{step.name}' with {step.image}: {' '.join(step.command)}")
        started = time.time()
        try:
            result = run_one_off(payload["job"], step.image, with_database_wait(step.command),
                                 float(payload["timeout"]), _say)
        except JobError as error:
            _say(f"{service}: could not start the migration job: {error}; the update stops here")
            return 1
        for line in result.log.rstrip().splitlines():
            _say(f"  | {line}")
        if not result.succeeded:
            _say(f"{service}: {step.kind} migration '{step.name}' of {step.version} failed after {result.seconds:.1f}s "
                 f"(job {result.name}). It ran in one transaction, so none of it is applied; the update stops here "
                 "and no workload of the database changes version")
            return 1
        ran.append({"kind": step.kind, "name": step.name, "version": step.version, "image": step.image,
                    "job": result.name, "started_at": round(started, 3), "seconds": result.seconds})
        if step.kind == "up":
            applied.append(Applied(id=f"{step.version}@{int(started)}", version=step.version, image=step.image,
                                   name=step.name, down=wanted.down, irreversible=wanted.irreversible,
                                   applied_at=round(started, 3), database=wanted.database))
    if not decided.steps:
        _say(f"{service}: schema already as {wanted.version} needs (migration '{wanted.name}'); nothing to run")
    print(record_text(service, applied, ran))
    return 0


if __name__ == "__main__":
    sys.exit(main())
