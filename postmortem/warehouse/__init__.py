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

Block chunks hold the blocks ``start..end`` inclusive. One module per part:

- ``layout``: where files live, which names are allowed;
- ``jsonl``: the append-only JSON Lines files that survive ``kill -9`` (manifest, run records);
- ``lock``: the writer lock (one writing process, one writing thread per file);
- ``manifest``: which files are complete, and which were written together (groups);
- ``store``: writing files in a crash-safe order, and withdrawing them;
- ``verify``: checking files against the manifest, and repairing by removal;
- ``runs``: the run records;
- ``catalog`` and ``views``: the DuckDB catalog and the views stages register on it;
- ``core``: the ``Warehouse`` object that holds them together.

Everything a caller needs is importable from here (``from postmortem.warehouse import Warehouse``).
"""

from postmortem.warehouse.catalog import (
    ALL_RUNS_SUFFIX,
    POOL_EVENT_TABLES,
    TIMESTAMP_UTC,
    CatalogSummary,
)
from postmortem.warehouse.core import Warehouse
from postmortem.warehouse.layout import (
    CATALOG_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    OUTPUTS_DIR,
    RESERVED_NAMES,
    RUNS_NAME,
    VIEWS_NAME,
)
from postmortem.warehouse.manifest import (
    CHUNK_DATASETS_KEY,
    RUN_FAMILY_KEY,
    RUN_OUTPUTS_KEY,
    FileRecord,
)
from postmortem.warehouse.store import PARQUET_META_KEY, schema_fingerprint
from postmortem.warehouse.verify import Problem

__all__ = [
    "ALL_RUNS_SUFFIX", "CATALOG_NAME", "CHUNK_DATASETS_KEY", "LOCK_NAME", "MANIFEST_NAME", "OUTPUTS_DIR",
    "PARQUET_META_KEY", "POOL_EVENT_TABLES", "RESERVED_NAMES", "RUNS_NAME", "RUN_FAMILY_KEY", "RUN_OUTPUTS_KEY", "TIMESTAMP_UTC",
    "VIEWS_NAME", "CatalogSummary", "FileRecord", "Problem", "Warehouse", "schema_fingerprint",
]
