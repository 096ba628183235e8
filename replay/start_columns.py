"""The start positions as NumPy columns, straight from Arrow: no Python object per row.

``positions_at_start`` (an Arrow table, as DuckDB or Parquet give it) becomes, per pool, one
:class:`StartColumns`: the pool's users sorted (fixed-width bytes, found by binary search), for each
the range of its rows and its eMode category, and per row the asset number, the collateral flag,
the scaled balances as float64 (for the screen and the vector valuation) and as the two 64-bit words
of the exact DECIMAL(38,0) (read back into a Python int only for a user an event or the scalar
reference touches). :class:`replay.positions.PositionBook` loads these and materializes a user's
exact state on first use.

The float of an exact amount is ``fl(fl(hi) * 2**64 + fl(lo))``: within ``2u`` of the amount
(``3u`` from ``2**117`` on), which the error bound of :mod:`replay.vector_valuation` allows for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

__all__ = ["StartColumns", "has_repeated_positions", "read_start_positions", "start_columns"]

_DEC = None


def _dec_type():
    import pyarrow as pa

    global _DEC
    if _DEC is None:
        _DEC = pa.decimal128(38, 0)
    return _DEC


@dataclass
class StartColumns:
    """One pool's start positions: users sorted, their row ranges, and per-row columns."""

    users: np.ndarray  # fixed-width bytes, sorted, unique
    first: np.ndarray  # int64: first row of each user
    count: np.ndarray  # int64: rows of each user (0: a user with an eMode category and no asset row)
    emode: np.ndarray  # int64 per user
    row_asset: np.ndarray  # int64 per row: the asset's number in ``assets`` (-1: not a reserve of the pool)
    asset_code: np.ndarray  # int64 per row: the asset's entry in ``asset_names`` (-1: none, a user with an
    #                        eMode category only)
    asset_names: list[str]
    assets: list[str]
    collateral: np.ndarray  # bool per row
    scaled_a: np.ndarray  # float64 per row
    scaled_d: np.ndarray
    scaled_a_rest: np.ndarray  # float64 per row: amount - scaled_a, exact (the pair holds 106 bits)
    scaled_d_rest: np.ndarray
    a_words: np.ndarray  # uint64 (rows, 2): low and high word of the exact scaled aToken balance
    d_words: np.ndarray

    def find(self, user: str) -> int | None:
        """The user's number, or None when the start state does not hold it."""
        key = user.encode()
        j = int(np.searchsorted(self.users, key))
        if j < len(self.users) and self.users[j] == key:
            return j
        return None

    def name(self, j: int) -> str:
        return self.users[j].decode()

    @staticmethod
    def exact(words: np.ndarray, r: int) -> int:
        return int(words[r, 0]) + (int(words[r, 1]) << 64)


def _codes(arr) -> tuple[np.ndarray, list]:
    """A string column as Arrow dictionary codes (int64, -1 for null or empty) and its dictionary."""
    import pyarrow as pa

    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    enc = arr.dictionary_encode()
    names = enc.dictionary.to_pylist()
    codes = enc.indices.fill_null(-1).to_numpy().astype(np.int64)
    empty = [i for i, name in enumerate(names) if not name]
    for i in empty:
        codes[codes == i] = -1
    return codes, names


def _fixed_width(arr) -> np.ndarray:
    """A string column as fixed-width bytes without a Python object per value (addresses all have
    the same length); any other column the slow way."""
    import pyarrow as pa

    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if arr.null_count:
        arr = arr.fill_null("")
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    if n == 0:
        return np.zeros(0, dtype="S1")
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32, count=n + 1, offset=arr.offset * 4)
    widths = np.diff(offsets)
    width = int(widths[0])
    if width > 0 and (widths == width).all():
        data = arr.buffers()[2]
        return np.frombuffer(data, dtype=f"S{width}", count=n, offset=int(offsets[0]))
    return np.array([s.encode() for s in arr.to_pylist()], dtype="S")


def _sort_users(u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, first, count)``: a stable order of ``u`` (fixed-width bytes) and, in that order, where
    each distinct value starts and how many rows it has. Lowercase ``0x`` + 40-hex addresses (what the
    warehouse holds) sort as three integers, much faster than as strings and in the same order."""
    n = len(u)
    if n and u.dtype.itemsize == 42:
        chars = u.view(np.uint8).reshape(n, 42)
        digits = np.ascontiguousarray(chars[:, 2:]).tobytes()
        raw = None
        if (chars[:, 0] == ord("0")).all() and (chars[:, 1] == ord("x")).all() and digits.lower() == digits:
            try:
                raw = bytes.fromhex(digits.decode("ascii"))
            except ValueError:
                raw = None
        if raw is not None and len(raw) == 20 * n:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(n, 20)
            k1 = np.ascontiguousarray(b[:, :8]).view(">u8").ravel().astype(np.uint64)
            k2 = np.ascontiguousarray(b[:, 8:16]).view(">u8").ravel().astype(np.uint64)
            k3 = np.ascontiguousarray(b[:, 16:]).view(">u4").ravel().astype(np.uint64)
            keys = [k3, k2, k1]  # least significant first, for lexsort
            order = np.lexsort(keys)
            sk = [k[order] for k in keys]
            new = np.ones(n, dtype=bool)
            new[1:] = (sk[0][1:] != sk[0][:-1]) | (sk[1][1:] != sk[1][:-1]) | (sk[2][1:] != sk[2][:-1])
            first = np.nonzero(new)[0]
            return order, first, np.diff(np.append(first, n))
    order = np.argsort(u, kind="stable")
    _, first, count = np.unique(u[order], return_index=True, return_counts=True)
    return order, first, count


def _words(col) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A non-negative DECIMAL(38,0) (or integer) column: its exact 128-bit words, its float64 and the
    exact rest ``amount - float`` (an integer below ``2**53`` for amounts below ``2**106``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_decimal(col.type) or col.type.scale != 0 or col.type.byte_width != 16:
        col = pc.cast(col, _dec_type())
    if col.null_count:
        col = pc.fill_null(col, pa.scalar(0, col.type))
    n = len(col)
    words = np.frombuffer(col.buffers()[1], dtype=np.uint64, count=2 * n, offset=col.offset * 16).reshape(n, 2)
    if n and (words[:, 1] >> np.uint64(63)).any():
        raise ValueError("a scaled balance in positions_at_start is negative")
    floats = words[:, 1].astype(np.float64) * 2.0**64 + words[:, 0].astype(np.float64)
    # the float's own words (it is an integer; both parts exact), then the rest modulo 2**64, exact
    # since |rest| <= ulp / 2 < 2**63 for amounts below 2**116
    f_hi = np.floor(floats / 2.0**64)
    f_lo = (floats - f_hi * 2.0**64).astype(np.uint64)
    rest = (words[:, 0] - f_lo).view(np.int64).astype(np.float64)
    return words, floats, rest


def start_columns(table, assets_by_pool: Mapping[str, Sequence[str]]) -> dict[str, StartColumns]:
    """``positions_at_start`` as an Arrow table -> :class:`StartColumns` per pool of ``assets_by_pool``."""
    import pyarrow as pa

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    pool_codes, pool_names = _codes(table.column("pool"))
    users = _fixed_width(table.column("user"))
    asset_codes, asset_names = _codes(table.column("asset"))
    emode = table.column("emode_category").fill_null(0).to_numpy().astype(np.int64)
    collateral = table.column("using_as_collateral").fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    a_words, a_float, a_rest = _words(table.column("scaled_a_token_balance"))
    d_words, d_float, d_rest = _words(table.column("scaled_variable_debt"))
    out = {}
    for pool, pool_assets in assets_by_pool.items():
        wanted = [i for i, name in enumerate(pool_names) if name == pool]
        mine = np.nonzero(pool_codes == wanted[0])[0] if wanted else np.zeros(0, dtype=np.int64)
        u = users[mine]
        order, first, count = _sort_users(u)
        rows = mine[order]
        uniq = u[order][first] if len(rows) else np.zeros(0, dtype="S42")
        number_of = {a: i for i, a in enumerate(pool_assets)}
        lut = np.array([number_of.get(name, -1) for name in asset_names] + [-1], dtype=np.int64)
        codes = asset_codes[rows]
        numbers = lut[codes]  # code -1 takes the last entry: -1
        # the last row of a user gives its eMode category (as a row-by-row load would)
        last = first + count - 1
        out[pool] = StartColumns(
            users=uniq, first=first.astype(np.int64), count=count.astype(np.int64),
            emode=emode[rows][last] if len(rows) else np.zeros(0, dtype=np.int64),
            row_asset=numbers, asset_code=codes, asset_names=asset_names, assets=list(pool_assets),
            collateral=collateral[rows], scaled_a=a_float[rows], scaled_d=d_float[rows], scaled_a_rest=a_rest[rows],
            scaled_d_rest=d_rest[rows], a_words=a_words[rows], d_words=d_words[rows])
    return out


def has_repeated_positions(columns: Mapping[str, StartColumns]) -> bool:
    """Whether some (user, asset) appears in two rows (a row-by-row load keeps the last one)."""
    for sc in columns.values():
        named = sc.asset_code >= 0
        if named.sum() < 2:
            continue
        row_user = np.repeat(np.arange(len(sc.users), dtype=np.int64), sc.count)
        key = row_user[named] * (len(sc.asset_names) + 1) + sc.asset_code[named]
        span = len(sc.users) * (len(sc.asset_names) + 1)
        if span <= 16 * len(key):  # a count per possible key: linear, no sort
            if np.bincount(key, minlength=span).max() > 1:
                return True
            continue
        key = np.sort(key)
        if (key[1:] == key[:-1]).any():
            return True
    return False


def read_start_positions(root, *, chain_id: int, pools: Sequence[str], block: int):
    """``positions_at_start`` of ``pools`` at ``block`` from the warehouse, as an Arrow table (the rows
    :func:`replay.inputs.load_inputs` reads as dicts); loads into the book by columns."""
    import duckdb
    import pyarrow as pa

    from postmortem.sql import connect_read_only

    pools = sorted({p.lower() for p in pools})
    inlist = ", ".join("?" for _ in pools)
    con = connect_read_only(root)
    try:
        return con.sql(f"SELECT * FROM positions_at_start WHERE chain_id = ? AND block_number = ? AND pool IN ({inlist})",
                       params=[chain_id, block, *pools]).to_arrow_table()
    except duckdb.CatalogException:
        return pa.table({})
    finally:
        con.close()
