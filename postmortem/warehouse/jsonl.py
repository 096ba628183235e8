"""Append-only JSON Lines files that survive ``kill -9`` (the manifest and the run records).

Why JSON Lines rather than SQLite: every change is one appended line, written with a single
``write`` and ``fsync``-ed before the call returns, so a ``kill -9`` at any point leaves at most
one torn last line, which readers skip (and the next append starts on a fresh line). It is
readable with ``grep``/``jq``, diffable, needs no WAL side files, and works on any filesystem
where append works.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from postmortem.atomic import fsync_path, write_all


def utc_now() -> str:
    """Now, as ISO 8601 UTC with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    # Exact, readable encodings for what stages typically put in params/summary/meta.
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"cannot store {type(value).__name__} in the warehouse's JSON records")


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True, separators=(",", ":"))


_APPEND_GUARD = threading.Lock()


class JsonLines:
    """An append-only JSON Lines file that survives ``kill -9`` at any instant.

    Each append is one ``write`` of one line followed by ``fsync``. A writer killed mid-line
    leaves a last line without ``\\n``; readers ignore it, and the next append first ends it
    with ``\\n`` so the torn bytes never merge with a good record. Lines that do not parse are
    reported as damaged (by line number) and otherwise ignored.

    Reads are incremental: the file only grows, so only new complete lines are parsed.
    """

    def __init__(self, path: Path):
        self.path = path
        self._offset = 0
        self._inode: int | None = None
        self._line_no = 0
        self.records: list[dict] = []
        self.damaged: list[int] = []  # 1-based line numbers of lines that did not parse
        self.generation = 0  # bumped whenever the file was replaced and re-read from the start

    def append(self, obj: dict) -> None:
        with _APPEND_GUARD:  # threads of one process take turns; other processes hold the writer lock
            self._append(obj)

    def _append(self, obj: dict) -> None:
        line = (dumps(obj) + "\n").encode()
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # close a torn line left by a killed writer
            write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_path(self.path.parent)

    def load(self) -> list[dict]:
        """All records parsed so far plus any new complete lines; a reset if the file was replaced."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._reset(None)
            return self.records
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._reset(st.st_ino)
        if st.st_size == self._offset:
            return self.records
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            return self.records  # only a partial (possibly torn) line so far
        for raw in data[: end + 1].split(b"\n")[:-1]:
            self._line_no += 1
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except ValueError:
                self.damaged.append(self._line_no)
                continue
            if not isinstance(rec, dict):
                self.damaged.append(self._line_no)
                continue
            self.records.append(rec)
        self._offset += end + 1
        return self.records

    def _reset(self, inode: int | None) -> None:
        self.generation += 1
        self._inode = inode
        self._offset = 0
        self._line_no = 0
        self.records = []
        self.damaged = []
