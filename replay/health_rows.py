"""The ``health`` table while the replay builds it: columns per evaluation, not a dict per row.

A replay writes one row per (checkpoint, pool, user near liquidation). At a million positions that
is tens of millions of rows, and a Python dict per row (about 1 KB with its ints) was what bounded
the full replay's time and memory. :class:`HealthRows` keeps each evaluation of a pool at a
checkpoint as a *segment* of NumPy columns: the users the vector path valued exactly (its arrays as
they come) and the few rows of the scalar reference (liquidated and wrongly eligible users, those
the proof could not settle), merged in the table's order: by evaluation, then by user address.
:meth:`HealthRows.to_arrow` turns the segments into the documented Arrow table in a few vectorized
passes. Iterating gives the rows as dicts (the same values as before, for tests and small readers).

Values stay exact integers: a segment whose values all fit ``int64`` keeps them so (the vector
path's always do: its health factors are below 9e18 and its sums below 2**53); otherwise the
segment's value columns are Python ints (object arrays), converted as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

__all__ = ["HEALTH_VALUES", "FastValues", "HealthRows"]

# The exact value columns of a health row, in the table's order.
HEALTH_VALUES = ("hf_reported", "hf_true", "collateral_base_reported", "debt_base_reported",
                 "collateral_base_true", "debt_base_true")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class FastValues:
    """The vector path's users of one evaluation: their numbers in the pool's mirror, eMode category,
    and the six exact values (int64 arrays, in :data:`HEALTH_VALUES` order)."""

    ids: np.ndarray
    emode: np.ndarray
    values: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, mask: np.ndarray) -> "FastValues":
        return FastValues(self.ids[mask], self.emode[mask], tuple(v[mask] for v in self.values))


@dataclass(frozen=True)
class _Segment:
    const: Mapping  # market, pool and the checkpoint's columns: one value for every row of the segment
    names: np.ndarray  # fixed-width bytes, sorted
    emode: np.ndarray  # int64
    values: tuple[np.ndarray, ...]  # int64, or object (Python ints) when a value does not fit
    wrongly: np.ndarray  # bool
    here: np.ndarray  # bool


class HealthRows:
    """The health rows of a replay, segment by segment (see the module docstring)."""

    def __init__(self) -> None:
        self._segments: list[_Segment] = []
        self._n = 0

    def add(self, const: Mapping, fast_names: np.ndarray | None, fast: FastValues | None,
            rows: Sequence[dict], *, fast_wrongly: np.ndarray | None = None) -> None:
        """One evaluation: ``const`` (market, pool, checkpoint columns), the vector path's users
        (``fast_names``: their addresses as bytes; ``fast_wrongly``: which are wrongly eligible, none
        when absent; none is liquidated here) and the scalar reference's ``rows`` (dicts with
        ``user``, ``emode_category``, the values and the two flags)."""
        k_fast = 0 if fast is None else len(fast)
        if k_fast == 0 and not rows:
            return
        scalar_names = np.array([r["user"].encode() for r in rows], dtype=bytes) if rows else np.zeros(0, "S1")
        names = np.concatenate([fast_names, scalar_names]) if k_fast else scalar_names
        emode = np.array([r["emode_category"] for r in rows], dtype=np.int64)
        values = []
        for j, name in enumerate(HEALTH_VALUES):
            column = [r[name] for r in rows]
            fits = all(v is not None and _I64_MIN <= v <= _I64_MAX for v in column)
            part = np.array(column, dtype=np.int64 if fits else object)
            if k_fast:
                head = fast.values[j] if fits else fast.values[j].astype(object)
                part = np.concatenate([head, part]) if rows else head.copy()
            values.append(part)
        wrongly = np.array([bool(r["wrongly_eligible"]) for r in rows], dtype=bool)
        here = np.array([bool(r["liquidated_here"]) for r in rows], dtype=bool)
        if k_fast:
            emode = np.concatenate([fast.emode.astype(np.int64), emode])
            head = np.zeros(k_fast, bool) if fast_wrongly is None else np.asarray(fast_wrongly, dtype=bool)
            wrongly = np.concatenate([head, wrongly])
            here = np.concatenate([np.zeros(k_fast, bool), here])
        order = np.argsort(names, kind="stable")
        self._segments.append(_Segment(dict(const), names[order], emode[order], tuple(v[order] for v in values),
                                       wrongly[order], here[order]))
        self._n += len(names)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[dict]:
        for s in self._segments:
            columns = [s.names.tolist(), s.emode.tolist(), *(v.tolist() for v in s.values),
                       s.wrongly.tolist(), s.here.tolist()]
            for name, emode, *rest in zip(*columns):
                *vals, wrongly, here = rest
                row = {"market": s.const["market"], "pool": s.const["pool"], "user": name.decode(),
                       **{k: v for k, v in s.const.items() if k not in ("market", "pool")},
                       "emode_category": emode}
                row.update(zip(HEALTH_VALUES, (int(v) for v in vals)))
                row["wrongly_eligible"], row["liquidated_here"] = wrongly, here
                yield row

    def __eq__(self, other) -> bool:
        if isinstance(other, (HealthRows, list)):
            return list(self) == list(other)
        return NotImplemented

    def to_arrow(self, doc) -> pa.Table:
        """The rows as the documented Arrow table ``doc`` (``replay.output_tables.TABLES['health']``).
        A decimal value outside 38 digits is stored as NULL, as for every output table."""
        schema = doc.arrow_schema()
        return pa.Table.from_batches(list(self.batches(doc)), schema=schema)

    def batches(self, doc, rows_per_batch: int = 1 << 20) -> Iterator[pa.RecordBatch]:
        """The same rows as record batches of about ``rows_per_batch`` rows (whole segments each),
        so that a large table is written without all of it in memory as Arrow at once."""
        group: list[_Segment] = []
        size = 0
        for seg in self._segments:
            group.append(seg)
            size += len(seg.names)
            if size >= rows_per_batch:
                yield _batch(group, doc)
                group, size = [], 0
        if group or not self._segments:
            yield _batch(group, doc)


def _batch(segs: list[_Segment], doc) -> pa.RecordBatch:
    """Segments ``segs`` as one record batch of the documented schema."""
    from postmortem.replay.output_tables import DEC_MAX

    sizes = np.array([len(s.names) for s in segs], dtype=np.int64)
    arrays = []
    for c in doc.columns:
        name = c.name
        if name == "user":
            names = np.concatenate([s.names for s in segs]) if segs else np.zeros(0, "S1")
            users = pa.array(names, type=pa.binary())  # pyarrow chunks a large bytes array: one chunk here
            users = users.combine_chunks() if isinstance(users, pa.ChunkedArray) else users
            arrays.append(users.cast(pa.string()))
        elif name == "emode_category":
            arrays.append(_int_array(np.concatenate([s.emode for s in segs]) if segs else [], c.type))
        elif name in HEALTH_VALUES:
            j = HEALTH_VALUES.index(name)
            parts = [s.values[j] for s in segs]
            if all(p.dtype != object for p in parts):
                arr = pa.array(np.concatenate(parts) if parts else np.zeros(0, np.int64), type=pa.int64())
                arrays.append(arr.cast(c.type) if pa.types.is_decimal(c.type) else arr)
            else:
                flat = [int(v) for p in parts for v in p.tolist()]
                arrays.append(pa.array([None if abs(v) > DEC_MAX else Decimal(v) for v in flat], type=c.type))
        elif name == "wrongly_eligible":
            arrays.append(pa.array(np.concatenate([s.wrongly for s in segs]) if segs else [], type=pa.bool_()))
        elif name == "liquidated_here":
            arrays.append(pa.array(np.concatenate([s.here for s in segs]) if segs else [], type=pa.bool_()))
        else:  # one value per segment, repeated over its rows
            arrays.append(_repeated([s.const.get(name) for s in segs], sizes, c.type))
    return pa.RecordBatch.from_arrays(arrays, schema=doc.arrow_schema())


def _int_array(values, type_: pa.DataType) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64), type=pa.int64()).cast(type_)


def _repeated(per_segment: list, sizes: np.ndarray, type_: pa.DataType) -> pa.Array:
    """``per_segment[i]`` repeated ``sizes[i]`` times, as an Arrow array of ``type_`` (None: null)."""
    if pa.types.is_string(type_):
        dictionary = sorted({v for v in per_segment if v is not None})
        code = {v: i for i, v in enumerate(dictionary)}
        idx = np.repeat(np.array([code.get(v, -1) for v in per_segment], dtype=np.int32), sizes)
        indices = pa.array(idx, mask=idx < 0, type=pa.int32())
        return pa.DictionaryArray.from_arrays(indices, pa.array(dictionary, pa.string())).cast(pa.string())
    nulls = np.repeat(np.array([v is None for v in per_segment], dtype=bool), sizes)
    vals = np.repeat(np.array([0 if v is None else int(v) for v in per_segment], dtype=np.int64), sizes)
    return pa.array(vals, mask=nulls if nulls.any() else None, type=pa.int64()).cast(type_)
