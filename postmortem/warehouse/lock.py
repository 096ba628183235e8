"""The writer lock: one writing process per warehouse, and one writing thread per file.

``root/.lock`` is held with ``flock`` (the kernel releases it when its holder dies, so a crashed
writer never blocks the next one) and holds JSON naming the holder, so a second writer is told
who holds it since when. Within a process the lock is shared and re-entrant: stages open several
``Warehouse`` objects on one root, and ingest threads write chunks under the lock their command
took; those threads claim the files (and block ranges) they write so no two collide.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from postmortem.errors import PostmortemError
from postmortem.warehouse.jsonl import dumps, utc_now

log = logging.getLogger("postmortem.warehouse")


@dataclass
class _HeldLock:
    fd: int
    pid: int
    depth: int


# One writer lock per warehouse per process, shared by every Warehouse object and thread of the
# process: stages may open several Warehouse objects on the same root, and ingest threads write
# chunks concurrently under the lock their command took.
_HELD: dict[str, _HeldLock] = {}
_HELD_GUARD = threading.Lock()
# Files being written right now, per warehouse, by threads of this process: rel path -> range.
_IN_FLIGHT: dict[str, dict[str, tuple[int, str, int, int] | None]] = {}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _read_holder(fd: int) -> dict:
    try:
        raw = os.pread(fd, 65536, 0)
        info = json.loads(raw) if raw.strip() else {}
        return info if isinstance(info, dict) else {}
    except (OSError, ValueError):
        return {}


class LockMixin:
    """The writer lock of a warehouse (``self.root``, ``self.lock_path`` are set by ``Warehouse``)."""

    root: Path
    lock_path: Path
    lock_note: str | None

    @contextlib.contextmanager
    def lock(self, owner: str) -> Iterator["LockMixin"]:
        """Hold the writer lock on this warehouse; ``owner`` says who (e.g. the command line).

        The lock file ``root/.lock`` is locked with ``flock`` (released by the kernel when the
        holder dies, so a crashed writer never blocks the next one) and holds JSON naming the
        holder. A second process gets a ``PostmortemError`` saying who holds it since when,
        before anything is written. Content left by a holder that died is reported as a stale
        lock taken over (``self.lock_note`` and a log warning). Re-entrant within a process.
        """
        key = str(self.root)
        with _HELD_GUARD:
            held = _HELD.get(key)
            if held is not None and held.pid == os.getpid():
                held.depth += 1
            else:
                # A Warehouse inherited across fork() is not ours: take a lock of our own.
                held = _HeldLock(self._acquire(owner), os.getpid(), 1)
                _HELD[key] = held
        try:
            yield self
        finally:
            with _HELD_GUARD:
                held.depth -= 1
                if held.depth == 0:
                    del _HELD[key]
                    self._release(held.fd)

    def holds_lock(self) -> bool:
        """True if this process holds the writer lock on this warehouse."""
        with _HELD_GUARD:
            held = _HELD.get(str(self.root))
            return held is not None and held.pid == os.getpid()

    def _acquire(self, owner: str) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise PostmortemError(self._locked_message(holder)) from None
        except BaseException:
            os.close(fd)
            raise
        previous = _read_holder(fd)
        self.lock_note = None
        if previous:
            # The kernel released the flock, so its holder is gone; only its note remains.
            self.lock_note = (
                f"took over a stale lock on {self.root} left by {previous.get('command', '?')!r} "
                f"(pid {previous.get('pid', '?')} on {previous.get('host', '?')}, since "
                f"{previous.get('started_at', '?')}), which is no longer running"
            )
            log.warning(self.lock_note)
        info = {
            "pid": os.getpid(), "host": socket.gethostname(), "started_at": utc_now(),
            "command": owner, "argv": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (dumps(info) + "\n").encode(), 0)
        os.fsync(fd)
        return fd

    def _release(self, fd: int) -> None:
        try:
            os.ftruncate(fd, 0)  # an empty lock file means "free, and released cleanly"
            os.fsync(fd)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _locked_message(self, holder: dict) -> str:
        if not holder:
            return f"the warehouse {self.root} is locked by another process that is just starting; try again in a moment"
        pid, host = holder.get("pid", "?"), holder.get("host", "?")
        extra = ""
        if host == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
            extra = ", whose process has exited but left a child process holding the lock"
        return (
            f"the warehouse {self.root} is locked by {holder.get('command', '?')!r} "
            f"(pid {pid} on {host}) since {holder.get('started_at', '?')}{extra}; "
            "wait for it to finish or stop that process"
        )

    def _writing(self, what: str) -> contextlib.AbstractContextManager:
        return self.lock(f"{what} ({' '.join(sys.argv)[:200]})")

    @contextlib.contextmanager
    def _in_flight(self, rel: str, chunk: tuple[int, str, int, int] | None) -> Iterator[None]:
        """Claim ``rel`` (and its block range) for one writing thread of this process.

        Two threads writing the same file would share its ``.tmp``; two writing overlapping
        ranges would both pass the overlap check. Either is a caller bug, refused here.
        """
        key = str(self.root)
        with _HELD_GUARD:
            claimed = _IN_FLIGHT.setdefault(key, {})
            for other_rel, other in claimed.items():
                if other_rel == rel or (chunk and other and other[:2] == chunk[:2]
                                        and other[2] <= chunk[3] and chunk[2] <= other[3]):
                    raise PostmortemError(f"{rel} overlaps {other_rel}, which another thread is writing right now; "
                                          "give each thread its own block ranges")
            claimed[rel] = chunk
        try:
            yield
        finally:
            with _HELD_GUARD:
                claimed.pop(rel, None)
