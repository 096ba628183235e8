"""Human-unit columns (``<field>_units``, float64) next to the exact integer amounts of the decoded
tables, for display only: the integers stay the truth.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from postmortem.ingest import tables as ingest_tables

def _units(values: pa.Array, decimals: np.ndarray) -> pa.Array:
    """Human units for display (float64): exact integers divided by 10^decimals."""
    as_float = pc.cast(values, pa.float64())
    return pc.divide(as_float, pa.array(np.power(10.0, decimals)))


def _lookup(keys: pa.ChunkedArray | pa.Array, mapping: dict, values_type: pa.DataType, default=None) -> pa.Array:
    """``mapping[key]`` for every key, vectorised (Arrow ``index_in`` + ``take``); ``default``
    where a key is not in the mapping (or the key itself when ``default`` is None)."""
    table_keys = pa.array(list(mapping), pa.string())
    idx = pc.index_in(keys, value_set=table_keys)
    got = pc.take(pa.array(list(mapping.values()), values_type), idx)
    return pc.if_else(pc.is_null(idx), keys if default is None else pa.scalar(default, values_type), got)


def _with_units(table_name: str, t: pa.Table, token_decimals: dict[str, int]) -> pa.Table:
    spec = ingest_tables.HUMAN_UNITS.get(table_name)
    if not spec or t.num_rows == 0:
        return t
    for field, asset_col in spec:
        dec = _lookup(t.column(asset_col), token_decimals, pa.float64(), 18.0).to_numpy(zero_copy_only=False)
        t = t.append_column(f"{field}_units", _units(t.column(field), dec))
    return t
