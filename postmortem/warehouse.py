"""The warehouse every stage reads and writes: Parquet files, a manifest, a lock, a DuckDB catalog.

On-disk layout (``root`` is ``--warehouse DIR``)::

    root/
      .lock              writer lock: JSON {pid, host, started_at, command}; empty when free
      manifest.jsonl     append-only record of every completed or invalidated Parquet file
      runs.jsonl         append-only summary of every run (record_run)
      views.json         extra SQL views registered by stages (register_view)
      catalog.duckdb     DuckDB views over the Parquet files (refresh_catalog)
      {chain_id}/
        {dataset}/{chain_id}__{dataset}__{start:09d}_to_{end:09d}.parquet   block chunks
        outputs/{table}/{incident_id}__{run_id}.parquet                     replay/report outputs

Block chunks hold the blocks ``start..end`` inclusive. Output files carry ``incident_id`` and
``run_id`` columns and their provenance (tool version, parameters, input file hashes) both in
the manifest and in the Parquet file's own key-value metadata (key ``postmortem``).

Why the manifest is JSON Lines rather than SQLite: every change is one appended line, written
with a single ``write`` and ``fsync``-ed before the call returns, so a ``kill -9`` at any point
leaves at most one torn last line, which readers skip (and the next append starts on a fresh
line). It is readable with ``grep``/``jq``, diffable, needs no WAL side files, and works on any
filesystem where append works. The last line for a path wins: a ``put`` records a complete
file, an ``invalidate`` withdraws it.

Write order for a chunk: temporary ``*.parquet.tmp`` in the same folder, ``fsync``, atomic
rename, ``fsync`` of the folder, then the manifest line. A crash before the rename leaves a
stray ``.tmp`` (ignored by the catalog, reported by ``verify``); a crash between the rename and
the manifest line leaves a complete but unrecorded file, which ``is_complete`` treats as not
done, so a re-run rewrites and records it. Rewriting a range first records an invalidation, so a
crash mid-rewrite never leaves a manifest entry that points at different bytes.

Groups. Files written together stand or fall together: the chunk files of one chain and block
range (decoded tables, reads, headers and the raw ``logs`` marker written last), and the
outputs of one (incident, run). The last file of a group lists the others in its manifest meta
(``chunk_datasets`` / ``run_outputs``), so a group missing a member is found even when that
member's manifest line was withdrawn. ``repair`` never withdraws one member alone: it withdraws
the whole group, so the next ingest (or replay) writes all of it again and nothing is silently
lost (a decoded table with no rows in a chunk is simply not written, and not listed).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import operator
import os
import re
import secrets
import socket
import sys
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.parquet as pq

from postmortem import __version__, schema_docs
from postmortem.errors import PostmortemError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
RUNS_NAME = "runs.jsonl"
VIEWS_NAME = "views.json"
CATALOG_NAME = "catalog.duckdb"
LOCK_NAME = ".lock"
OUTPUTS_DIR = "outputs"
PARQUET_META_KEY = b"postmortem"
# Meta keys by which a file vouches for the files written with it (see "groups" in the module doc):
# a chunk's marker lists the datasets written for the same block range, a run's last output lists
# the run's output tables. A group is complete only when every file it lists is there.
CHUNK_DATASETS_KEY = "chunk_datasets"
RUN_OUTPUTS_KEY = "run_outputs"

# An output table's view of every run is named like the table plus this; the plain name shows
# the latest complete run of each incident.
ALL_RUNS_SUFFIX = "_all_runs"
# The catalog adds this column beside a Unix-seconds ``timestamp`` column: the same instant, UTC.
TIMESTAMP_UTC = "timestamp_utc"
_TIMESTAMP_UTC_SQL = f'make_timestamp(CAST("timestamp" AS BIGINT) * 1000000) AS {TIMESTAMP_UTC}'

POOL_EVENT_TABLES = schema_docs.POOL_EVENT_TABLES  # their views call the emitting contract `pool`

# Names the catalog uses for itself; datasets may not take them.
RESERVED_NAMES = frozenset({OUTPUTS_DIR, "runs", "warehouse_files", "catalog_info"})

_DATASET_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileRecord:
    """A completed Parquet file as the manifest records it.

    ``start``/``end`` are block numbers (inclusive) for chunks and None for outputs;
    ``incident_id``/``run_id`` are set for outputs only. ``bytes`` is the file size,
    ``sha256`` the hex digest of the file bytes, ``written_at`` an ISO-8601 UTC time.
    """

    path: str  # relative to the warehouse root, '/'-separated
    kind: str  # "chunk" | "output"
    chain_id: int
    dataset: str
    start: int | None
    end: int | None
    incident_id: str | None
    run_id: str | None
    rows: int
    bytes: int
    sha256: str
    schema_fingerprint: str
    meta: dict
    written_at: str
    tool_version: str

    def to_json(self) -> dict:
        return {
            "path": self.path, "kind": self.kind, "chain_id": self.chain_id, "dataset": self.dataset,
            "start": self.start, "end": self.end, "incident_id": self.incident_id, "run_id": self.run_id,
            "rows": self.rows, "bytes": self.bytes, "sha256": self.sha256,
            "schema_fingerprint": self.schema_fingerprint, "meta": self.meta,
            "written_at": self.written_at, "tool_version": self.tool_version,
        }

    @classmethod
    def from_json(cls, d: dict) -> "FileRecord":
        return cls(
            path=d["path"], kind=d["kind"], chain_id=int(d["chain_id"]), dataset=d["dataset"],
            start=d.get("start"), end=d.get("end"), incident_id=d.get("incident_id"), run_id=d.get("run_id"),
            rows=int(d["rows"]), bytes=int(d["bytes"]), sha256=d["sha256"],
            schema_fingerprint=d.get("schema_fingerprint", ""), meta=d.get("meta") or {},
            written_at=d.get("written_at", ""), tool_version=d.get("tool_version", ""),
        )


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong. ``description`` is one sentence saying what and what to do."""

    kind: str  # missing_file | hash_mismatch | unreadable | stray_tmp | unrecorded_file | damaged_manifest_line
    #            | incomplete_chunk | incomplete_run
    path: str  # relative to the warehouse root
    description: str

    def __str__(self) -> str:
        return self.description


@dataclass
class CatalogSummary:
    """What ``refresh_catalog`` built: views over files, empty typed views, and views it skipped (name -> why)."""

    path: Path
    views: list[str] = field(default_factory=list)
    empty_views: list[str] = field(default_factory=list)
    registered_views: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


# --- small file-system helpers ------------------------------------------------------------------


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fsync_dir(path: Path) -> None:
    # The rename/creation is only durable once the directory entry itself is on disk.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


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


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, sort_keys=True, separators=(",", ":"))


_APPEND_GUARD = threading.Lock()


class _JsonLines:
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
        line = (_dumps(obj) + "\n").encode()
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # close a torn line left by a killed writer
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

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


# --- the writer lock ----------------------------------------------------------------------------


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


def _strip_url_secrets(url: str) -> str:
    """``url`` with credentials, path and query replaced by ``***`` (API keys live there).

    ``https://eth-mainnet.g.alchemy.com/v2/KEY`` -> ``https://eth-mainnet.g.alchemy.com/***``.
    Coarser than a caller's redaction on purpose: this is only the last line of defence.
    """
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "***"  # unparsable (e.g. a bad port): keep nothing
    if not parts.scheme or not host:
        return "***"
    secret = parts.username or parts.password or parts.path.strip("/") or parts.query or parts.fragment
    return urlunsplit((parts.scheme, host, "/***" if secret else "", "", ""))


_URL_RE = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _redact_urls(value: Any) -> Any:
    # Defence in depth: callers redact RPC URLs, but a key left in a URL must never reach disk.
    if isinstance(value, str):
        return _strip_url_secrets(value) if _URL_RE.match(value) else value
    if isinstance(value, dict):
        return {k: _redact_urls(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_urls(v) for v in value]
    return value


# --- the warehouse ------------------------------------------------------------------------------


class Warehouse:
    """A warehouse rooted at ``root``; creating the object touches nothing on disk.

    Every method that changes the warehouse takes the writer lock for its duration, unless this
    process already holds it (``with warehouse.lock(...)``), so a second writer process fails
    fast with a message naming the holder instead of interleaving with it.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()
        self.manifest_path = self.root / MANIFEST_NAME
        self.runs_path = self.root / RUNS_NAME
        self.views_path = self.root / VIEWS_NAME
        self.catalog_path = self.root / CATALOG_NAME
        self.lock_path = self.root / LOCK_NAME
        self._manifest = _JsonLines(self.manifest_path)
        self._runs = _JsonLines(self.runs_path)
        self._live: dict[str, FileRecord] = {}
        self._applied = 0  # how many manifest records are folded into _live
        self._generation = 0  # which version of the manifest file _live was built from
        self._state_guard = threading.RLock()
        self.lock_note: str | None = None  # set when a stale lock was taken over

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"

    # ---- paths

    def chunk_path(self, chain_id: int, dataset: str, start: int, end: int) -> Path:
        """Where the chunk of ``dataset`` for blocks ``start..end`` (inclusive) lives."""
        return self.root / str(chain_id) / dataset / f"{chain_id}__{dataset}__{start:09d}_to_{end:09d}.parquet"

    def output_path(self, chain_id: int, table: str, incident_id: str, run_id: str) -> Path:
        """Where output ``table`` of one (incident, run) lives."""
        return self.root / str(chain_id) / OUTPUTS_DIR / table / f"{incident_id}__{run_id}.parquet"

    def exists(self) -> bool:
        """True if ``root`` holds a warehouse: a manifest, a catalog, or chain folders of data."""
        if self.manifest_path.exists() or self.catalog_path.exists():
            return True
        try:
            return any(e.is_dir() and e.name.isdigit() for e in self.root.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return False

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # ---- the lock

    @contextlib.contextmanager
    def lock(self, owner: str) -> Iterator["Warehouse"]:
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
            "pid": os.getpid(), "host": socket.gethostname(), "started_at": _utc_now(),
            "command": owner, "argv": sys.argv,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (_dumps(info) + "\n").encode(), 0)
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

    # ---- manifest state

    def _state(self) -> dict[str, FileRecord]:
        """Live records by path, folding in any manifest lines appended since the last call.

        Returns a snapshot that is never mutated afterwards (a new dict is built when the
        manifest changed), so threads can iterate it while others write.
        """
        with self._state_guard:
            records = self._manifest.load()
            if self._manifest.generation != self._generation:  # manifest replaced (compaction)
                self._live, self._applied = {}, 0
                self._generation = self._manifest.generation
            if self._applied == len(records):
                return self._live
            live = dict(self._live)
            for rec in records[self._applied:]:
                op, path = rec.get("op"), rec.get("path")
                if op == "put" and path:
                    try:
                        live[path] = FileRecord.from_json(rec)
                    except (KeyError, TypeError, ValueError):
                        continue
                elif op == "invalidate" and path:
                    live.pop(path, None)
            self._live, self._applied = live, len(records)
            return live

    def _record(self, op: str, payload: dict) -> None:
        with self._state_guard:
            self._manifest.append({"v": 1, "op": op, "at": _utc_now(), **payload})

    # ---- writing

    def write_chunk(
        self, chain_id: int, dataset: str, start: int, end: int, table: pa.Table, meta: dict | None = None
    ) -> FileRecord:
        """Write ``table`` as the chunk of ``dataset`` holding blocks ``start..end`` (inclusive).

        ``meta`` is stored in the manifest and the file (e.g. ``{"start_block_hash": ..,
        "end_block_hash": ..}`` for reorg checks). Rewriting the same range replaces the chunk;
        a range that overlaps a different completed chunk is refused, so no block is counted
        twice. Documented columns (schema_docs) must have their documented types.
        """
        _check_dataset(dataset)
        chain_id = _check_chain(chain_id)
        start, end = _as_int(start), _as_int(end)
        if start is None or end is None or not 0 <= start <= end:
            raise PostmortemError(f"block range {start}..{end} is not valid; start and end must be integers with 0 <= start <= end")
        path = self.chunk_path(chain_id, dataset, start, end)
        rel = self._rel(path)
        with self._writing(f"write {dataset} {start}..{end}"), self._in_flight(rel, (chain_id, dataset, start, end)):
            for other in self._state().values():
                if (other.kind == "chunk" and other.chain_id == chain_id and other.dataset == dataset
                        and other.path != rel and other.start <= end and start <= other.end):
                    raise PostmortemError(
                        f"chunk {dataset} {start}..{end} overlaps the completed chunk {other.start}..{other.end}; "
                        "invalidate that chunk first or keep the same chunk boundaries"
                    )
            self._check_kind(chain_id, dataset, "chunk")
            header = {"chain_id": chain_id, "dataset": dataset, "start": start, "end": end, "meta": meta or {}}
            return self._write_file(path, "chunk", table, header, chain_id, dataset, start=start, end=end)

    def write_output(
        self, chain_id: int, table_name: str, incident_id: str, run_id: str, table: pa.Table, provenance: dict
    ) -> FileRecord:
        """Write a replay/report output table for one (incident, run).

        ``incident_id`` and ``run_id`` columns are added when absent (and must match when
        present). ``provenance`` should hold the parameters and input file hashes
        (``input_hashes``); the tool version is added. Rewriting the same run replaces it.
        """
        _check_dataset(table_name)
        chain_id = _check_chain(chain_id)
        for label, value in (("incident id", incident_id), ("run id", run_id)):
            if not (isinstance(value, str) and _ID_RE.match(value) and "__" not in value):
                raise PostmortemError(
                    f"{label} {value!r} is not valid; use letters, digits, '.', '-' and '_' (no '__')"
                )
        table = _with_constant_column(table, "incident_id", incident_id)
        table = _with_constant_column(table, "run_id", run_id)
        path = self.output_path(chain_id, table_name, incident_id, run_id)
        with self._writing(f"write {table_name} {incident_id} {run_id}"), self._in_flight(self._rel(path), None):
            self._check_kind(chain_id, table_name, "output")
            header = {
                "chain_id": chain_id, "dataset": table_name, "incident_id": incident_id, "run_id": run_id,
                "meta": {"tool_version": __version__, **(provenance or {})},
            }
            return self._write_file(path, "output", table, header, chain_id, table_name,
                                    incident_id=incident_id, run_id=run_id)

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

    def _check_kind(self, chain_id: int, dataset: str, kind: str) -> None:
        # A name is either a block-chunked dataset or an output table, so it maps to one view.
        for rec in self._state().values():
            if rec.dataset == dataset and rec.kind != kind:
                raise PostmortemError(
                    f"{dataset} already holds {rec.kind} files (e.g. {rec.path}); pick another name for this {kind}"
                )

    def _write_file(self, path: Path, kind: str, table: pa.Table, header: dict, chain_id: int, dataset: str,
                    *, start: int | None = None, end: int | None = None,
                    incident_id: str | None = None, run_id: str | None = None) -> FileRecord:
        if not isinstance(table, pa.Table):
            raise TypeError(f"expected a pyarrow.Table, got {type(table).__name__}")
        for c in table.schema:
            schema_docs.duckdb_type(c.type)  # refuses decimal256 (DuckDB would read it as floats)
        mismatches = schema_docs.check_schema(dataset, table.schema)
        if mismatches:
            raise PostmortemError(f"{dataset} does not match its documented schema: {'; '.join(mismatches)}")
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[PARQUET_META_KEY] = _dumps({**header, "tool_version": __version__}).encode()
        rel = self._rel(path)
        if rel in self._state():
            # Withdraw the old entry first: a crash mid-rewrite must not leave a manifest line
            # vouching for a file whose bytes are about to change.
            self._record("invalidate", {"path": rel, "reason": "rewrite"})
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        try:
            pq.write_table(table.replace_schema_metadata(schema_meta), tmp, compression="zstd")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            digest = _sha256_file(tmp)
            size = tmp.stat().st_size
        except Exception:
            tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind (a kill leaves the .tmp)
            raise
        os.replace(tmp, path)
        _fsync_dir(path.parent)
        record = FileRecord(
            path=rel, kind=kind, chain_id=chain_id, dataset=dataset, start=start, end=end,
            incident_id=incident_id, run_id=run_id, rows=table.num_rows, bytes=size, sha256=digest,
            schema_fingerprint=schema_fingerprint(table.schema), meta=header.get("meta") or {},
            written_at=_utc_now(), tool_version=__version__,
        )
        self._record("put", record.to_json())
        return record

    # ---- reading the manifest

    def record_for(self, chain_id: int, dataset: str, start: int, end: int) -> FileRecord | None:
        """The manifest record of a chunk, or None if it is not recorded as complete."""
        return self._state().get(self._rel(self.chunk_path(chain_id, dataset, start, end)))

    def is_complete(self, chain_id: int, dataset: str, start: int, end: int, verify: bool = False) -> bool:
        """True if the chunk is recorded as complete and its file is there with the recorded size.

        With ``verify=True`` the file is also re-hashed (reads the whole file).
        """
        rec = self.record_for(chain_id, dataset, start, end)
        return rec is not None and self._file_ok(rec, verify)

    def _file_ok(self, rec: FileRecord, rehash: bool) -> bool:
        path = self.root / rec.path
        try:
            if path.stat().st_size != rec.bytes:
                return False
        except FileNotFoundError:
            return False
        return not rehash or _sha256_file(path) == rec.sha256

    def completed_chunks(self, chain_id: int, dataset: str) -> list[FileRecord]:
        """Complete chunks of ``dataset`` on ``chain_id`` (recorded and present), by start block."""
        recs = [r for r in self._state().values()
                if r.kind == "chunk" and r.chain_id == chain_id and r.dataset == dataset and self._file_ok(r, False)]
        return sorted(recs, key=lambda r: r.start)

    def group_of(self, rec: FileRecord) -> list[FileRecord]:
        """Every live record written together with ``rec``: for a chunk, the chunks of every
        dataset with the same chain and block range; for an output, the outputs of its run."""
        if rec.kind == "chunk":
            same = lambda r: (r.kind == "chunk" and r.chain_id == rec.chain_id  # noqa: E731
                              and r.start == rec.start and r.end == rec.end)
        else:
            same = lambda r: (r.kind == "output" and r.chain_id == rec.chain_id  # noqa: E731
                              and r.incident_id == rec.incident_id and r.run_id == rec.run_id)
        return sorted((r for r in self._state().values() if same(r)), key=lambda r: r.path)

    def missing_members(self, rec: FileRecord) -> list[str]:
        """Datasets (tables) that ``rec`` lists as written with it but that are not complete now."""
        if rec.kind == "chunk":
            listed = (rec.meta or {}).get(CHUNK_DATASETS_KEY) or []
            return [ds for ds in listed if not self.is_complete(rec.chain_id, ds, rec.start, rec.end)]
        listed = (rec.meta or {}).get(RUN_OUTPUTS_KEY) or []
        missing = []
        for table in listed:
            other = self._state().get(self._rel(self.output_path(rec.chain_id, table, rec.incident_id, rec.run_id)))
            if other is None or not self._file_ok(other, False):
                missing.append(table)
        return missing

    def is_chunk_complete(self, chain_id: int, marker: str, start: int, end: int) -> bool:
        """True if the chunk's ``marker`` file is complete and so is every dataset it lists."""
        rec = self.record_for(chain_id, marker, start, end)
        return rec is not None and self._file_ok(rec, False) and not self.missing_members(rec)

    def check_run_complete(self, chain_id: int, table: str, incident_id: str, run_id: str) -> FileRecord:
        """The record of output ``table`` of a run, if the run's outputs are all present;
        else a ``PostmortemError`` saying what is missing and to replay again."""
        rec = self._state().get(self._rel(self.output_path(chain_id, table, incident_id, run_id)))
        missing = [table] if rec is None or not self._file_ok(rec, False) else self.missing_members(rec)
        if missing:
            raise PostmortemError(
                f"replay run {run_id} of {incident_id} is incomplete (no {', '.join(missing)} output); "
                f"run `postmortem replay --incident {incident_id}` again"
            )
        return rec

    def latest_complete_runs(self) -> dict[tuple[int, str], str]:
        """(chain id, incident id) -> run id of the newest run whose outputs are all present.

        A run's newest output file dates it. A run whose outputs list the run's tables
        (``run_outputs``, as every replay writes them) counts only when all of them are there."""
        runs: dict[tuple[int, str, str], list[FileRecord]] = {}
        for rec in self._state().values():
            if rec.kind == "output":
                runs.setdefault((rec.chain_id, rec.incident_id, rec.run_id), []).append(rec)
        best: dict[tuple[int, str], tuple[str, str]] = {}
        for (chain_id, incident_id, run_id), recs in runs.items():
            if any(not self._file_ok(r, False) or self.missing_members(r) for r in recs):
                continue  # a file gone, or a run cut short before it wrote every table it lists
            stamp = (max(r.written_at for r in recs), run_id)
            if stamp > best.get((chain_id, incident_id), ("", "")):
                best[(chain_id, incident_id)] = stamp
        return {k: v[1] for k, v in best.items()}

    def outputs(self, chain_id: int, table: str, incident_id: str | None = None) -> list[FileRecord]:
        """Complete output files of ``table`` (optionally for one incident), oldest first."""
        recs = [r for r in self._state().values()
                if r.kind == "output" and r.chain_id == chain_id and r.dataset == table
                and (incident_id is None or r.incident_id == incident_id) and self._file_ok(r, False)]
        return sorted(recs, key=lambda r: r.written_at)

    def records(self) -> list[FileRecord]:
        """Every file the manifest records as complete (present or not), sorted by path."""
        return sorted(self._state().values(), key=lambda r: r.path)

    def input_hashes(self, chain_id: int, datasets: list[str], start: int | None = None,
                     end: int | None = None) -> dict[str, str]:
        """Provenance for outputs: path -> sha256 of every complete chunk of ``datasets``
        on ``chain_id`` that overlaps blocks ``start..end`` (all chunks when omitted)."""
        out = {}
        for ds in datasets:
            for r in self.completed_chunks(chain_id, ds):
                if (start is None or r.end >= start) and (end is None or r.start <= end):
                    out[r.path] = r.sha256
        return out

    # ---- invalidation and checks

    def invalidate(self, chain_id: int, dataset: str, start: int, end: int, reason: str = "invalidated") -> bool:
        """Withdraw a chunk (reorg, damage): mark it incomplete, then delete its file.

        Returns True if there was a record or a file. The manifest line comes first so that a
        crash in between leaves "incomplete" (a re-run re-fetches), never "complete but gone".
        """
        return self._invalidate_path(self.chunk_path(chain_id, dataset, start, end), reason)

    def invalidate_output(self, chain_id: int, table: str, incident_id: str, run_id: str,
                          reason: str = "invalidated") -> bool:
        """Withdraw one output file (see ``invalidate``)."""
        return self._invalidate_path(self.output_path(chain_id, table, incident_id, run_id), reason)

    def _invalidate_path(self, path: Path, reason: str) -> bool:
        rel = self._rel(path)
        with self._writing(f"invalidate {rel}"):
            known = rel in self._state()
            if known:
                self._record("invalidate", {"path": rel, "reason": reason})
            existed = path.exists()
            path.unlink(missing_ok=True)
            if existed:
                _fsync_dir(path.parent)
            return known or existed

    def verify(self, rehash: bool = True) -> list[Problem]:
        """Check every manifest entry against the files, and the files against the manifest.

        Finds: recorded files that are missing, whose bytes changed (hash), or that are not
        readable Parquet (truncated/damaged); stray ``.tmp`` files; Parquet files the manifest
        does not record; damaged manifest lines. ``rehash=False`` checks sizes and Parquet
        footers only (fast). Takes no lock: a ``.tmp`` may belong to a writer running now.
        """
        if not self.exists():
            raise PostmortemError(
                f"no warehouse at {self.root} (no {MANIFEST_NAME}); ingest into it first or give --warehouse"
            )
        problems: list[Problem] = []
        live = self._state()
        for line in self._manifest.damaged:
            problems.append(Problem(
                "damaged_manifest_line", MANIFEST_NAME,
                f"manifest line {line} is damaged (a write torn by a crash) and was ignored; "
                "the file it described, if any, is reported as unrecorded",
            ))
        for rec in sorted(live.values(), key=lambda r: r.path):
            problems.extend(self._check_record(rec, rehash))
        for rec in sorted(live.values(), key=lambda r: r.path):
            # A member whose line was withdrawn (an older repair) leaves its group half there.
            gone = [m for m in self.missing_members(rec)
                    if not any(r.dataset == m for r in self.group_of(rec))]
            if gone:
                what = "chunk" if rec.kind == "chunk" else "run"
                problems.append(Problem(
                    f"incomplete_{what}", rec.path,
                    f"{rec.path} completes a {what} whose {', '.join(gone)} "
                    f"{'file is' if len(gone) == 1 else 'files are'} gone; invalidate the {what} (repair does) and re-run",
                ))
        if self.root.exists():
            for path in sorted(self._walk_files()):
                rel = self._rel(path)
                if path.name.endswith(".tmp"):
                    problems.append(Problem(
                        "stray_tmp", rel,
                        f"{rel} is a temporary file left by an interrupted write; delete it (repair does)",
                    ))
                elif path.suffix == ".parquet" and rel not in live:
                    problems.append(Problem(
                        "unrecorded_file", rel,
                        f"{rel} is not in the manifest (written just before a crash, or placed by hand); "
                        "delete it (repair does) and re-run to fetch it again",
                    ))
        return problems

    def _check_record(self, rec: FileRecord, rehash: bool) -> list[Problem]:
        path = self.root / rec.path
        if not path.exists():
            return [Problem("missing_file", rec.path,
                            f"{rec.path} is recorded as complete but missing; invalidate it (repair does) and re-run")]
        size = path.stat().st_size
        if rehash:
            if _sha256_file(path) == rec.sha256:
                return []
        elif size == rec.bytes and _parquet_rows(path) == rec.rows:
            return []
        rows = _parquet_rows(path)
        if rows is None:
            return [Problem("unreadable", rec.path,
                            f"{rec.path} is not readable Parquet (truncated or damaged, {size} of {rec.bytes} bytes); "
                            "invalidate it (repair does) and re-run")]
        return [Problem("hash_mismatch", rec.path,
                        f"{rec.path} changed since it was written ({rows} rows now, {rec.rows} recorded); "
                        "invalidate it (repair does) and re-run")]

    def _walk_files(self) -> Iterator[Path]:
        # Data lives under numeric chain folders; root-level *.tmp come from atomic rewrites.
        for entry in self.root.iterdir():
            if entry.is_file() and entry.name.endswith(".tmp"):
                yield entry
            elif entry.is_dir() and entry.name.isdigit():
                for dirpath, _dirs, files in os.walk(entry):
                    for name in files:
                        if name.endswith(".parquet") or name.endswith(".tmp"):
                            yield Path(dirpath) / name

    def repair(self, problems: list[Problem] | None = None) -> list[str]:
        """Fix what ``verify`` found: invalidate bad/missing entries, delete stray and unrecorded
        files, rewrite the manifest without damaged lines. Returns one sentence per action.

        Every fix only removes things, so the next run re-fetches exactly what was lost.
        """
        if problems is None:
            problems = self.verify()  # before the lock: a folder with no warehouse gets no lock file
        actions = []
        compacted = False
        with self._writing("repair"):
            for p in problems:
                path = self.root / p.path
                if p.kind in ("missing_file", "hash_mismatch", "unreadable", "incomplete_chunk", "incomplete_run"):
                    rec = self._state().get(p.path)
                    group = [r for r in self.group_of(rec) if r.path != p.path] if rec is not None else []
                    self._invalidate_path(path, f"repair: {p.kind}")
                    for other in group:  # the rest of its chunk or run: re-written together next time
                        self._invalidate_path(self.root / other.path, f"repair: {p.kind} in {p.path}")
                    also = f" and with it {', '.join(r.path for r in group)}" if group else ""
                    actions.append(f"invalidated {p.path} ({p.kind.replace('_', ' ')}){also}")
                elif p.kind in ("stray_tmp", "unrecorded_file"):
                    path.unlink(missing_ok=True)
                    actions.append(f"deleted {p.path} ({p.kind.replace('_', ' ')})")
                elif p.kind == "damaged_manifest_line" and not compacted:
                    self.compact_manifest()
                    compacted = True
                    actions.append("rewrote the manifest without its damaged lines")
            if actions and self.catalog_path.exists():
                self.refresh_catalog()  # views and warehouse_files no longer name what was removed
        return actions

    def compact_manifest(self) -> None:
        """Rewrite the manifest as one ``put`` line per live file (drops history and damaged lines)."""
        with self._writing("compact manifest"):
            live = self._state()
            data = "".join(_dumps({"v": 1, "op": "put", "at": _utc_now(), **r.to_json()}) + "\n"
                           for r in sorted(live.values(), key=lambda r: r.path))
            _atomic_write_bytes(self.manifest_path, data.encode())

    # ---- run records

    def record_run(self, kind: str, params: dict, summary: dict, *, run_id: str | None = None,
                   started_at: datetime | None = None, finished_at: datetime | None = None) -> dict:
        """Save a summary of one run (ingest, replay, report ...) to ``runs.jsonl`` and return it.

        ``params`` should already have RPC URLs redacted (``postmortem.redact``); any string
        that still looks like a URL has its path, query and credentials replaced by ``***``. ``summary`` holds counts and timings. Times are UTC;
        ``duration_s`` is in seconds.
        """
        finished = finished_at or datetime.now(timezone.utc)
        started = started_at or finished
        rec = {
            "run_id": run_id or f"{finished.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}",
            "kind": kind,
            "tool_version": __version__,
            "started_at": _iso_utc(started),
            "finished_at": _iso_utc(finished),
            "duration_s": round((finished - started).total_seconds(), 3),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "params": _redact_urls(params),
            "summary": summary,
        }
        json.loads(_dumps(rec))  # refuse unstorable values before touching the file
        with self._writing(f"record {kind} run"):
            self._runs.append(rec)
        return rec

    def runs(self, kind: str | None = None) -> list[dict]:
        """Recorded runs, oldest first, optionally only those of ``kind``."""
        with self._state_guard:
            records = list(self._runs.load())
        return [r for r in records if kind is None or r.get("kind") == kind]

    # ---- the catalog

    def datasets(self) -> dict[str, str]:
        """Names with files on disk (any chain) -> "chunk" or "output"."""
        found: dict[str, str] = {}
        if not self.root.exists():
            return found
        for chain_dir in self.root.iterdir():
            if not (chain_dir.is_dir() and chain_dir.name.isdigit()):
                continue
            for ds in chain_dir.iterdir():
                if ds.name == OUTPUTS_DIR and ds.is_dir():
                    for out in ds.iterdir():
                        if out.is_dir() and any(out.glob("*.parquet")):
                            found.setdefault(out.name, "output")
                elif ds.is_dir() and any(ds.glob("*.parquet")):
                    found.setdefault(ds.name, "chunk")
        return found

    def _base_names(self) -> set[str]:
        """Names the catalog gives to file-backed views (datasets on disk and documented tables)."""
        documented = {d.name for d in schema_docs.all_tables()
                      if d.kind in (schema_docs.KIND_CHUNKED, schema_docs.KIND_OUTPUT, schema_docs.KIND_CATALOG)}
        outputs = {n for n, k in self.datasets().items() if k == "output"} | {
            d.name for d in schema_docs.all_tables() if d.kind == schema_docs.KIND_OUTPUT}
        return set(self.datasets()) | documented | RESERVED_NAMES | {n + ALL_RUNS_SUFFIX for n in outputs}

    def registered_views(self) -> dict[str, dict]:
        """Views stages registered: name -> {"sql": ..., "description": ...}, in creation order."""
        try:
            data = json.loads(self.views_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise PostmortemError(f"{self.views_path} is not valid JSON ({exc}); fix or delete it and re-register views") from None
        return {v["name"]: {"sql": v["sql"], "description": v.get("description", "")} for v in data.get("views", [])}

    def register_view(self, name: str, sql: str, description: str = "") -> CatalogSummary:
        """Add (or replace) a SQL view over the base views, persisted so every refresh re-creates it.

        ``sql`` is one SELECT over catalog names (e.g. a human-unit view joining ``reserves``
        for decimals). The catalog is refreshed at once; if the view does not build, the
        registration is rolled back and a ``PostmortemError`` says why.
        """
        import duckdb

        if not _DATASET_RE.match(name) or name in RESERVED_NAMES:
            raise PostmortemError(f"view name {name!r} is not allowed; use lowercase letters, digits and '_' and not {sorted(RESERVED_NAMES)}")
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise PostmortemError(f"the SQL of view {name} does not parse: {_first_line(exc)}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise PostmortemError(f"the SQL of view {name} must be a single SELECT statement")
        if name in self._base_names():
            raise PostmortemError(f"{name} is already a dataset or documented table; pick another name for the view")
        with self._writing(f"register view {name}"):
            before = self.registered_views()
            views = dict(before)
            views.pop(name, None)  # re-registering moves it last, after anything it may use
            views[name] = {"sql": sql.strip().rstrip(";"), "description": description}
            self._save_views(views)
            try:
                summary = self.refresh_catalog()
            except BaseException:
                self._save_views(before)
                raise
            if name in summary.skipped:
                self._save_views(before)
                self.refresh_catalog()
                raise PostmortemError(f"view {name} does not build: {summary.skipped[name]}")
            return summary

    def unregister_view(self, name: str) -> None:
        """Remove a registered view and refresh the catalog."""
        with self._writing(f"unregister view {name}"):
            views = self.registered_views()
            if views.pop(name, None) is None:
                raise PostmortemError(f"no registered view named {name}; see views.json in the warehouse")
            self._save_views(views)
            self.refresh_catalog()

    def _save_views(self, views: dict[str, dict]) -> None:
        data = {"version": 1, "views": [{"name": k, **v} for k, v in views.items()]}
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(self.views_path, (json.dumps(data, indent=2) + "\n").encode())

    def refresh_catalog(self) -> CatalogSummary:
        """(Re)build ``catalog.duckdb``: one view per dataset/output table, named like it.

        Views read ``read_parquet('root/*/{dataset}/*.parquet', union_by_name=true)`` across all
        chains and add a ``chain_id`` column from the folder. The glob picks up chunks written
        after the refresh and never matches ``*.parquet.tmp``; a refresh is needed only for a
        new dataset, or when every file of a dataset was removed. A documented table
        (schema_docs) with no files gets an empty view with its documented columns, so queries
        and registered views can rely on it; an undocumented one without files gets no view.
        Also builds ``warehouse_files`` and ``runs`` (snapshots of the manifest and run records
        as of this refresh) and ``catalog_info``, then the registered views in order.

        The new catalog is built in a side file and renamed over the old one, so readers
        holding the old catalog open are never blocked and a crash leaves the old one intact.
        """
        import duckdb

        with self._writing("refresh catalog"):
            self.root.mkdir(parents=True, exist_ok=True)
            building = self.root / (CATALOG_NAME + ".building")
            for leftover in (building, Path(str(building) + ".wal")):
                leftover.unlink(missing_ok=True)
            summary = CatalogSummary(self.catalog_path)
            con = duckdb.connect(str(building))
            try:
                self._build_base_views(con, summary)
                self._build_bookkeeping_tables(con)
                base = set(summary.views) | set(summary.empty_views)
                for name, view in self.registered_views().items():
                    if name in base:
                        summary.skipped[name] = "a dataset of that name exists; the registered view is not created"
                        continue
                    try:
                        con.execute(f"CREATE OR REPLACE VIEW {_ident(name)} AS {view['sql']}")
                        summary.registered_views.append(name)
                    except duckdb.Error as exc:
                        summary.skipped[name] = _first_line(exc)
                        log.warning("view %s was not created: %s", name, _first_line(exc))
                self._add_comments(con, self.registered_views())
                con.execute("CHECKPOINT")
            finally:
                con.close()
            fd = os.open(building, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(building, self.catalog_path)
            Path(str(building) + ".wal").unlink(missing_ok=True)
            _fsync_dir(self.root)
            return summary

    def relocate_catalog(self, built_for: str) -> None:
        """Rebuild a catalog that was built for ``built_for`` (the folder was copied or moved).

        The catalog's views name the Parquet files by absolute path (DuckDB's sandbox for
        ``postmortem sql`` only reads absolute paths under the warehouse), so a moved warehouse
        gets its views rebuilt for where it is now; the data files are not touched."""
        log.info("the warehouse moved from %s to %s; rebuilding its catalog", built_for, self.root)
        try:
            self.refresh_catalog()
        except OSError as exc:
            raise PostmortemError(
                f"the warehouse at {self.root} was moved from {built_for} and its catalog cannot be rebuilt here "
                f"({exc.strerror or exc}); copy the warehouse to a writable folder"
            ) from None

    def _build_base_views(self, con, summary: CatalogSummary) -> None:
        """One view per dataset; an output table gets two: ``{name}_all_runs`` (every run, with
        its ``run_id``) and ``{name}`` (the latest complete run of each incident, so a naive
        ``sum`` or ``count`` never adds up two runs of one incident)."""
        on_disk = self.datasets()
        documented = {d.name: d for d in schema_docs.all_tables()
                      if d.kind in (schema_docs.KIND_CHUNKED, schema_docs.KIND_OUTPUT)}
        latest = self.latest_complete_runs()
        for name in sorted(set(on_disk) | set(documented)):
            if name in RESERVED_NAMES:
                summary.skipped[name] = "the name is reserved for the catalog's own tables"
                continue
            kind = on_disk.get(name) or ("output" if documented[name].kind == schema_docs.KIND_OUTPUT else "chunk")
            target = f"{name}{ALL_RUNS_SUFFIX}" if kind == "output" else name
            if not self._build_one_view(con, summary, name, target, kind, name in on_disk, documented.get(name)):
                continue
            if kind == "output":
                runs = sorted((c, i, r) for (c, i), r in latest.items())
                cond = (f"(chain_id, incident_id, run_id) IN ({', '.join(f'({c}, {_literal(i)}, {_literal(r)})' for c, i, r in runs)})"
                        if runs else "false")
                con.execute(f"CREATE VIEW {_ident(name)} AS SELECT * FROM {_ident(target)} WHERE {cond}")
                (summary.views if name in on_disk else summary.empty_views).append(name)

    def _build_one_view(self, con, summary: CatalogSummary, name: str, target: str, kind: str, on_disk: bool,
                        doc) -> bool:
        import duckdb

        if on_disk:
            sub = f"{OUTPUTS_DIR}/{name}" if kind == "output" else name
            glob = f"{self.root.as_posix()}/*/{sub}/*.parquet"
            source = (f"read_parquet({_literal(glob)}, union_by_name=true, "
                      "filename='_pm_file', hive_partitioning=false)")
            try:
                described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
                columns = {r[0]: r[1] for r in described}
                select = "* EXCLUDE (_pm_file)"
                if name in POOL_EVENT_TABLES and "address" in columns and "pool" not in columns:
                    select += " RENAME (address AS pool)"
                if "chain_id" not in columns:
                    pattern = f"/([0-9]+)/{sub}/[^/]+$"
                    select += f", CAST(regexp_extract(_pm_file, {_literal(pattern)}, 1) AS BIGINT) AS chain_id"
                if _has_unix_timestamp(columns):
                    select += f", {_TIMESTAMP_UTC_SQL}"
                con.execute(f"CREATE VIEW {_ident(target)} AS SELECT {select} FROM {source}")
            except duckdb.Error as exc:
                # One damaged or inconsistent dataset must not take the whole catalog down.
                summary.skipped[name] = f"{_first_line(exc)} (run verify on the warehouse)"
                log.warning("view %s was not created: %s", name, summary.skipped[name])
                return False
            summary.views.append(target)
            return True
        cols = [(c.name, c.sql_type) for c in doc.columns]
        if name in POOL_EVENT_TABLES and "pool" not in dict(cols):
            cols = [("pool" if c == "address" else c, t) for c, t in cols]
        extra = [("incident_id", "VARCHAR"), ("run_id", "VARCHAR")] if doc.kind == schema_docs.KIND_OUTPUT else []
        names = {c for c, _ in cols}
        cols += [c for c in extra if c[0] not in names]
        if "chain_id" not in names:
            cols.append(("chain_id", "BIGINT"))
        if _has_unix_timestamp(dict(cols)):
            cols.append((TIMESTAMP_UTC, "TIMESTAMP"))
        select = ", ".join(f"CAST(NULL AS {t}) AS {_ident(c)}" for c, t in cols)
        con.execute(f"CREATE VIEW {_ident(target)} AS SELECT {select} WHERE false")
        summary.empty_views.append(target)
        return True

    def _build_bookkeeping_tables(self, con) -> None:
        files = []
        for r in self.records():
            files.append({
                "path": r.path, "file_kind": r.kind, "chain_id": r.chain_id, "dataset": r.dataset,
                "start_block": r.start, "end_block": r.end, "incident_id": r.incident_id, "run_id": r.run_id,
                "rows": r.rows, "bytes": r.bytes, "sha256": r.sha256, "schema_fingerprint": r.schema_fingerprint,
                "written_at": _parse_utc(r.written_at), "meta": _dumps(r.meta),
            })
        runs = []
        for r in self.runs():
            runs.append({
                "run_id": r.get("run_id"), "kind": r.get("kind"), "tool_version": r.get("tool_version"),
                "started_at": _parse_utc(r.get("started_at")), "finished_at": _parse_utc(r.get("finished_at")),
                "duration_s": r.get("duration_s"), "host": r.get("host"),
                "params": _dumps(r.get("params")), "summary": _dumps(r.get("summary")),
            })
        for name, rows in (("warehouse_files", files), ("runs", runs)):
            arrow = pa.Table.from_pylist(rows, schema=schema_docs.get(name).arrow_schema())
            con.register("_pm_src", arrow)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM _pm_src")
            con.unregister("_pm_src")
        con.execute("CREATE TABLE catalog_info (root VARCHAR, refreshed_at TIMESTAMP, tool_version VARCHAR)")
        con.execute("INSERT INTO catalog_info VALUES (?, ?, ?)",
                    [self.root.as_posix(), datetime.now(timezone.utc).replace(tzinfo=None), __version__])

    def _add_comments(self, con, views: dict[str, dict]) -> None:
        # Descriptions travel with the catalog, so duckdb_columns() explains any table.
        existing = {}
        for table, column in con.execute(
            "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database()"
        ).fetchall():
            existing.setdefault(table, set()).add(column)
        kinds = dict(con.execute(
            "SELECT table_name, 'TABLE' FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION ALL SELECT view_name, 'VIEW' FROM duckdb_views() WHERE database_name = current_database() "
            "AND NOT internal").fetchall())
        for table, kind in kinds.items():
            doc = schema_docs.get(table)
            description = doc.description if doc else views.get(table, {}).get("description")
            if doc is None and table.endswith(ALL_RUNS_SUFFIX):
                doc = schema_docs.get(table[: -len(ALL_RUNS_SUFFIX)])
                if doc is not None:
                    description = schema_docs.ALL_RUNS_DOC.format(name=doc.name, description=doc.description)
            if description:
                con.execute(f"COMMENT ON {kind} {_ident(table)} IS {_literal(description)}")
            for column in existing.get(table, ()):
                c = doc.column(column) if doc else None
                if c is None and doc is not None and column == "pool" and table in POOL_EVENT_TABLES:
                    c = doc.column("address")  # the same column, called pool in the view
                text = c.comment() if c else schema_docs.CATALOG_COLUMN_DOCS.get(column)
                if text:
                    con.execute(f"COMMENT ON COLUMN {_ident(table)}.{_ident(column)} IS {_literal(text)}")


# --- helpers used above -------------------------------------------------------------------------


def schema_fingerprint(schema: pa.Schema) -> str:
    """A short hash of column names, types and nullability (not metadata), to spot schema drift."""
    text = "\n".join(f"{f.name}:{f.type}:{f.nullable}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_dataset(name: str) -> None:
    if not isinstance(name, str) or not _DATASET_RE.match(name) or "__" in name or name in RESERVED_NAMES:
        raise PostmortemError(
            f"dataset name {name!r} is not allowed; use lowercase letters, digits and single '_' "
            f"(and none of {sorted(RESERVED_NAMES)})"
        )


def _as_int(value: Any) -> int | None:
    # numpy and other integer types are fine; floats and bools are not block numbers.
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _check_chain(chain_id: Any) -> int:
    value = _as_int(chain_id)
    if value is None or value <= 0:
        raise PostmortemError(f"chain id {chain_id!r} is not valid; pass the positive integer chain id (1 for mainnet)")
    return value


def _with_constant_column(table: pa.Table, name: str, value: str) -> pa.Table:
    idx = table.schema.get_field_index(name)
    if idx < 0:
        return table.append_column(name, pa.array([value] * table.num_rows, pa.string()))
    values = set(table.column(idx).to_pylist())
    if values - {value}:
        raise PostmortemError(f"the table's {name} column holds {sorted(map(str, values))}, not only {value!r}; fix the writer")
    return table


def _parquet_rows(path: Path) -> int | None:
    """Row count from the Parquet footer, or None if the file is not readable Parquet."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException, ValueError):
        return None


def _iso_utc(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # naive times from callers are taken as UTC
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.astimezone(timezone.utc).replace(tzinfo=None) if dt.tzinfo else dt


def _has_unix_timestamp(columns: dict[str, str]) -> bool:
    return (columns.get("timestamp") in ("BIGINT", "INTEGER", "UBIGINT", "UINTEGER")
            and TIMESTAMP_UTC not in columns)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
