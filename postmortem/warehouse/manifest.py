"""The manifest: which Parquet files are complete, and which were written together.

``manifest.jsonl`` is append-only (see ``jsonl``); the last line for a path wins: a ``put``
records a complete file (``FileRecord``), an ``invalidate`` withdraws it.

Groups. Files written together stand or fall together: the chunk files of one chain and block
range (decoded tables, reads, headers and the raw ``logs`` marker written last), and the
outputs of one (incident, run). The last file of a group lists the others in its manifest meta
(``chunk_datasets`` / ``run_outputs``), so a group missing a member is found even when that
member's manifest line was withdrawn. ``repair`` never withdraws one member alone: it withdraws
the whole group, so the next ingest (or replay) writes all of it again and nothing is silently
lost (a decoded table with no rows in a chunk is simply not written, and not listed).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from postmortem import atomic
from postmortem.errors import PostmortemError
from postmortem.warehouse.jsonl import JsonLines, dumps, utc_now

# Meta keys by which a file vouches for the files written with it (see "groups" in the module doc):
# a chunk's marker lists the datasets written for the same block range, a run's last output lists
# the run's output tables. A group is complete only when every file it lists is there.
CHUNK_DATASETS_KEY = "chunk_datasets"
RUN_OUTPUTS_KEY = "run_outputs"
RUN_FAMILY_KEY = "run_family"  # output meta: which kind of run wrote it (default "replay")
RUN_FAMILIES = ("replay", "whatif", "stress")


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


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ManifestMixin:
    """Reading and recording the manifest (``self._manifest``, ``self._live``... are set by ``Warehouse``)."""

    root: Path
    manifest_path: Path
    _manifest: JsonLines
    _live: dict[str, FileRecord]
    _applied: int
    _generation: int
    _state_guard: threading.RLock

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
            self._manifest.append({"v": 1, "op": op, "at": utc_now(), **payload})

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
        return not rehash or sha256_file(path) == rec.sha256

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

    def latest_complete_runs(self, family: str = "replay") -> dict[tuple[int, str], str]:
        """(chain id, incident id) -> run id of the newest run whose outputs are all present.

        A run's newest output file dates it. A run whose outputs list the run's tables
        (``run_outputs``, as every replay writes them) counts only when all of them are there.
        ``family`` keeps apart runs of other kinds over the same incident (a what-if writes
        ``run_family`` = ``whatif`` in its outputs' meta), so a what-if never hides the replay."""
        runs: dict[tuple[int, str, str], list[FileRecord]] = {}
        for rec in self._state().values():
            if rec.kind == "output" and (rec.meta or {}).get(RUN_FAMILY_KEY, "replay") == family:
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

    def compact_manifest(self) -> None:
        """Rewrite the manifest as one ``put`` line per live file (drops history and damaged lines)."""
        with self._writing("compact manifest"):
            live = self._state()
            data = "".join(dumps({"v": 1, "op": "put", "at": utc_now(), **r.to_json()}) + "\n"
                           for r in sorted(live.values(), key=lambda r: r.path))
            atomic.write_bytes(self.manifest_path, data.encode())
