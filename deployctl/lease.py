"""deployctl's own lock per stack: a lease around preview + up + automatic rollback.

Pulumi locks a stack only for the length of one engine command, so two `deployctl deploy`s
could interleave (one's preview, the other's up, then one's rollback rewriting the config the
other just shipped). The lease covers the whole operation. It is a JSON file created with
O_EXCL beside the state (the file backend's directory, else the project's `.state/`), holding
who took it, for what, since when, and until when: the holder renews it while it runs, so a
lease past its expiry, or one whose holder process is gone from this host, is stale and is
taken over (and the takeover reported); a live one refuses the second operation at once.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

# Renewed every TTL/3 by the holder: a holder that hangs or dies stops renewing, and after one
# TTL another host can take the stack over. Long enough that a loaded machine never misses it.
LEASE_TTL_SECONDS = 90.0


class LeaseHeld(Exception):
    """Another live operation holds the stack's lease."""


@dataclass
class Lease:
    stack: str
    operation: str
    owner: str
    host: str
    pid: int
    pid_start: str
    started: float
    expires: float

    def describe(self) -> str:
        since = datetime.fromtimestamp(self.started, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        return (f"'{self.operation}' by {self.owner} on {self.host} (pid {self.pid}) since {since}, "
                f"{time.time() - self.started:.0f}s ago")


def process_start(pid: int) -> str:
    """The kernel's start time of a live process (field 22 of /proc/PID/stat), "" when there is
    none: a pid reused by another process has another start time, so a lease never outlives its
    holder through pid reuse; a zombie (killed, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()
    return "" if fields[0] in ("Z", "X") else fields[19]


def process_alive(host: str, pid: int, pid_start: str) -> bool | None:
    """True/False when the process ran on this host; None when it cannot be told from here."""
    if host != socket.gethostname():
        return None
    start = process_start(pid)
    return bool(start) and start == pid_start


def holder_alive(lease: Lease) -> bool | None:
    """True/False when the holder runs on this host; None when it cannot be told from here."""
    return process_alive(lease.host, lease.pid, lease.pid_start)


def is_stale(lease: Lease, now: float | None = None) -> bool:
    alive = holder_alive(lease)
    if alive is not None:
        return not alive
    return (now or time.time()) > lease.expires


class LeaseStore:
    """Leases of one backend's stacks, one file per stack."""

    def __init__(self, directory: Path, ttl: float = LEASE_TTL_SECONDS,
                 notify: Callable[[str], None] = lambda _: None) -> None:
        self.directory, self.ttl, self.notify = directory, ttl, notify
        self._held: dict[str, int] = {}  # re-entrant within one process (a drill calls rollback)
        self._guard = threading.Lock()

    def path(self, stack: str) -> Path:
        return self.directory / f"{stack}.json"

    def read(self, stack: str) -> Lease | None:
        try:
            return Lease(**json.loads(self.path(stack).read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            # A lease written halfway (the holder died inside write) is as good as no lease.
            return None

    def _new(self, stack: str, operation: str) -> Lease:
        now = time.time()
        return Lease(stack=stack, operation=operation, owner=getpass.getuser(), host=socket.gethostname(),
                     pid=os.getpid(), pid_start=process_start(os.getpid()), started=now, expires=now + self.ttl)

    def _create(self, lease: Lease) -> bool:
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path(lease.stack), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(lease), handle)
        return True

    def _take_over(self, stale: Lease) -> None:
        """Move a stale lease aside; rename is atomic, so of two operations recovering the same
        stale lease only one succeeds and the other sees the winner's lease on its next look."""
        aside = self.path(stale.stack).with_suffix(f".stale-{int(time.time() * 1000)}")
        try:
            os.rename(self.path(stale.stack), aside)
        except FileNotFoundError:
            return
        self.notify(f"{stale.stack}: took over a stale deployctl lease ({stale.describe()}; "
                    "its holder is gone): the interrupted operation's leftovers are checked next")
        aside.unlink(missing_ok=True)

    def acquire(self, stack: str, operation: str) -> Lease:
        lease = self._new(stack, operation)
        for _ in range(20):
            if self._create(lease):
                return lease
            current = self.read(stack)
            if current is None:
                if self.path(stack).exists():  # unreadable: left by a holder that died mid-write
                    self._take_over(self._new(stack, "unknown"))
                continue
            if not is_stale(current):
                raise LeaseHeld(f"{stack} is busy: {current.describe()}; wait for it to finish "
                                f"(the lease is {self.path(stack)})")
            self._take_over(current)
        raise LeaseHeld(f"{stack}: could not take the lease in {self.path(stack)} (contended)")

    def renew(self, lease: Lease) -> None:
        lease.expires = time.time() + self.ttl
        temporary = self.path(lease.stack).with_suffix(".renew")
        temporary.write_text(json.dumps(asdict(lease)))
        current = self.read(lease.stack)
        if current and (current.pid, current.host, current.started) == (lease.pid, lease.host, lease.started):
            os.replace(temporary, self.path(lease.stack))
        else:
            temporary.unlink(missing_ok=True)

    def release(self, lease: Lease) -> None:
        current = self.read(lease.stack)
        if current and (current.pid, current.host, current.started) == (lease.pid, lease.host, lease.started):
            self.path(lease.stack).unlink(missing_ok=True)

    @contextmanager
    def hold(self, stack: str, operation: str) -> Iterator[None]:
        """The lease for the block; nested holds of the same stack in this process share it."""
        with self._guard:
            if self._held.get(stack):
                self._held[stack] += 1
                nested = True
            else:
                nested = False
        if nested:
            try:
                yield
            finally:
                with self._guard:
                    self._held[stack] -= 1
            return
        lease = self.acquire(stack, operation)
        with self._guard:
            self._held[stack] = 1
        stop = threading.Event()

        def keep_renewing() -> None:
            while not stop.wait(self.ttl / 3):
                self.renew(lease)

        renewer = threading.Thread(target=keep_renewing, name=f"lease-{stack}", daemon=True)
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with self._guard:
                self._held.pop(stack, None)
            self.release(lease)
