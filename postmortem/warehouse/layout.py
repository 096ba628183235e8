"""Where things live in a warehouse, and which names are allowed.

The root holds the bookkeeping files (names below); data lives under one folder per chain id:
``{chain}/{dataset}/{chain}__{dataset}__{start:09d}_to_{end:09d}.parquet`` for block chunks and
``{chain}/outputs/{table}/{incident}__{run}.parquet`` for replay and report outputs.
"""

from __future__ import annotations

import operator
import re
from pathlib import Path
from typing import Any

from postmortem.errors import PostmortemError

MANIFEST_NAME = "manifest.jsonl"
RUNS_NAME = "runs.jsonl"
VIEWS_NAME = "views.json"
CATALOG_NAME = "catalog.duckdb"
LOCK_NAME = ".lock"
OUTPUTS_DIR = "outputs"

# Names the catalog uses for itself; datasets may not take them.
RESERVED_NAMES = frozenset({OUTPUTS_DIR, "runs", "warehouse_files", "catalog_info"})

_DATASET_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class LayoutMixin:
    """Paths of a warehouse's files (``self.root`` is set by ``Warehouse``)."""

    root: Path
    manifest_path: Path
    catalog_path: Path

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
