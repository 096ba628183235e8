"""Writing files into the warehouse, and withdrawing them.

Write order for a chunk: temporary ``*.parquet.tmp`` in the same folder, ``fsync``, atomic
rename, ``fsync`` of the folder (``postmortem.atomic``), then the manifest line. A crash before
the rename leaves a stray ``.tmp`` (ignored by the catalog, reported by ``verify``, overwritten
by the re-run); a crash between the rename and the manifest line leaves a complete but
unrecorded file, which ``is_complete`` treats as not done, so a re-run rewrites and records it.
Rewriting a range first records an invalidation, so a crash mid-rewrite never leaves a manifest
entry that points at different bytes. Withdrawing works the other way round: the manifest line
first, then the file, so a crash in between leaves "incomplete", never "complete but gone".

Output files carry ``incident_id`` and ``run_id`` columns and their provenance (tool version,
parameters, input file hashes) both in the manifest and in the Parquet file's own key-value
metadata (key ``postmortem``).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from postmortem import __version__, atomic, schema_docs
from postmortem.errors import PostmortemError
from postmortem.warehouse.jsonl import dumps, utc_now
from postmortem.warehouse.layout import _as_int, _check_chain, _check_dataset
from postmortem.warehouse.manifest import FileRecord, sha256_file

PARQUET_META_KEY = b"postmortem"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class StoreMixin:
    """Writing and withdrawing files (the other parts come from the ``Warehouse`` it is mixed into)."""

    root: Path

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
        if isinstance(table, pa.RecordBatchReader):  # a large output, written batch by batch
            table = _with_constant_columns_stream(table, {"incident_id": incident_id, "run_id": run_id})
        else:
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
        if not isinstance(table, (pa.Table, pa.RecordBatchReader)):
            raise TypeError(f"expected a pyarrow.Table or RecordBatchReader, got {type(table).__name__}")
        for c in table.schema:
            schema_docs.duckdb_type(c.type)  # refuses decimal256 (DuckDB would read it as floats)
        mismatches = schema_docs.check_schema(dataset, table.schema)
        if mismatches:
            raise PostmortemError(f"{dataset} does not match its documented schema: {'; '.join(mismatches)}")
        schema_meta = dict(table.schema.metadata or {})
        schema_meta[PARQUET_META_KEY] = dumps({**header, "tool_version": __version__}).encode()
        rel = self._rel(path)
        if rel in self._state():
            # Withdraw the old entry first: a crash mid-rewrite must not leave a manifest line
            # vouching for a file whose bytes are about to change.
            self._record("invalidate", {"path": rel, "reason": "rewrite"})
        path.parent.mkdir(parents=True, exist_ok=True)
        # A fixed temporary name: the re-run of a killed write overwrites what it left.
        with atomic.replacing(path, tmp=path.with_name(path.name + ".tmp")) as tmp:
            if isinstance(table, pa.Table):
                pq.write_table(table.replace_schema_metadata(schema_meta), tmp, compression="zstd")
                rows = table.num_rows
            else:
                rows = 0
                with pq.ParquetWriter(tmp, table.schema.with_metadata(schema_meta), compression="zstd") as writer:
                    for batch in table:
                        writer.write_batch(batch)
                        rows += batch.num_rows
            digest = sha256_file(tmp)
            size = tmp.stat().st_size
        record = FileRecord(
            path=rel, kind=kind, chain_id=chain_id, dataset=dataset, start=start, end=end,
            incident_id=incident_id, run_id=run_id, rows=rows, bytes=size, sha256=digest,
            schema_fingerprint=schema_fingerprint(table.schema), meta=header.get("meta") or {},
            written_at=utc_now(), tool_version=__version__,
        )
        self._record("put", record.to_json())
        return record

    # ---- withdrawing

    def invalidate(self, chain_id: int, dataset: str, start: int, end: int, reason: str = "invalidated") -> bool:
        """Withdraw a chunk (reorg, damage): mark it incomplete, then delete its file.

        Returns True if there was a record or a file. The manifest line comes first so that a
        crash in between leaves "incomplete" (a re-run re-fetches), never "complete but gone".
        """
        return self._invalidate_path(self.chunk_path(chain_id, dataset, start, end), reason)

    def _invalidate_path(self, path: Path, reason: str) -> bool:
        rel = self._rel(path)
        with self._writing(f"invalidate {rel}"):
            known = rel in self._state()
            if known:
                self._record("invalidate", {"path": rel, "reason": reason})
            existed = path.exists()
            path.unlink(missing_ok=True)
            if existed:
                atomic.fsync_path(path.parent)
            return known or existed


def _with_constant_columns_stream(reader: pa.RecordBatchReader, values: dict[str, str]) -> pa.RecordBatchReader:
    """``reader`` with a string column per ``values`` item appended to every batch (the writer's own
    columns of that name must not exist: a stream is not read twice to check them)."""
    present = [n for n in values if reader.schema.get_field_index(n) >= 0]
    if present:
        raise PostmortemError(f"a streamed output already has the column(s) {', '.join(present)}; fix the writer")
    schema = reader.schema
    for n in values:
        schema = schema.append(pa.field(n, pa.string()))

    def batches():
        for batch in reader:
            extra = [pa.repeat(pa.scalar(v, pa.string()), batch.num_rows) for v in values.values()]
            yield pa.RecordBatch.from_arrays([*batch.columns, *extra], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def schema_fingerprint(schema: pa.Schema) -> str:
    """A short hash of column names, types and nullability (not metadata), to spot schema drift."""
    text = "\n".join(f"{f.name}:{f.type}:{f.nullable}" for f in schema)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _with_constant_column(table: pa.Table, name: str, value: str) -> pa.Table:
    idx = table.schema.get_field_index(name)
    if idx < 0:
        return table.append_column(name, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
    values = set(table.column(idx).to_pylist())
    if values - {value}:
        raise PostmortemError(f"the table's {name} column holds {sorted(map(str, values))}, not only {value!r}; fix the writer")
    return table

