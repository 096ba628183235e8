"""Checking a warehouse against its manifest (``verify``) and removing what is damaged (``repair``).

Every fix only removes things (and whole groups, see ``manifest``), so the next ingest or replay
writes exactly what was lost again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from postmortem.errors import PostmortemError
from postmortem.warehouse.layout import MANIFEST_NAME
from postmortem.warehouse.manifest import FileRecord, sha256_file


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong. ``description`` is one sentence saying what and what to do."""

    kind: str  # missing_file | hash_mismatch | unreadable | stray_tmp | unrecorded_file | damaged_manifest_line
    #            | incomplete_chunk | incomplete_run
    path: str  # relative to the warehouse root
    description: str

    def __str__(self) -> str:
        return self.description


class VerifyMixin:
    """``verify`` and ``repair`` (the other parts come from the ``Warehouse`` it is mixed into)."""

    root: Path

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
            if sha256_file(path) == rec.sha256:
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


def _parquet_rows(path: Path) -> int | None:
    """Row count from the Parquet footer, or None if the file is not readable Parquet."""
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException, ValueError):
        return None
