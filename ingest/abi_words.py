"""One ABI word column to one Arrow column, checked: address padding, integer range (including
the ``< 10**38`` limit of DECIMAL(38,0)) and ``bool`` words other than 0 and 1 are caught for
every row at once before a value is built; ``_describe_word`` says what was wrong with one word.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyarrow as pa

from postmortem.ingest.events import DECIMAL_TYPE, Param, int_bits
from postmortem.ingest.hexcodec import _DECIMAL_MAX, _ONES, _ge128, _hex_strings, _le128, _rows

Builder = Callable[[np.ndarray | None], pa.Array]


def _convert(param: Param, raw8: np.ndarray) -> tuple[np.ndarray, Builder]:
    """Check the 32-byte words of ``param`` and prepare their Arrow column.

    ``raw8`` is ``(m, 32)`` uint8 with contiguous rows (big-endian ABI words). Returns the
    mask of valid words and ``build(keep)`` which makes the column from the rows ``keep``
    selects (``None``: all rows).
    """
    t = param.abi_type
    m = len(raw8)
    # Native uint64 view, only compared with 0 and all-ones, which is byte-order free.
    n64 = raw8.view(np.uint64)
    if t == "address":
        u32 = raw8.view(np.uint32)
        ok = (u32[:, 0] | u32[:, 1] | u32[:, 2]) == 0  # 12 bytes of zero padding
        return ok, lambda keep: _hex_strings(_rows(raw8, keep)[:, 12:])
    fill_zero = (n64[:, 0] | n64[:, 1]) == 0
    if t == "bool":
        ok = fill_zero & (n64[:, 2] == 0) & (raw8[:, 24:].view(">u8")[:, 0] <= 1)
        return ok, lambda keep: pa.array(_rows(raw8[:, 31], keep) == 1, type=pa.bool_())
    bits = int_bits(t)
    signed = t.startswith("int")
    arrow_type = param.arrow_type
    if arrow_type != DECIMAL_TYPE:
        # Narrow integer: value in the last 8 bytes, the 24 bytes above are its sign fill.
        value = raw8[:, 24:].view(">u8")[:, 0].astype(np.uint64)
        if signed:
            sv = value.view(np.int64)
            fill = np.where(sv < 0, _ONES, np.uint64(0))
            ok = (n64[:, 0] == fill) & (n64[:, 1] == fill) & (n64[:, 2] == fill)
            if bits < 64:
                ok &= (sv >= -(1 << (bits - 1))) & (sv < (1 << (bits - 1)))
        else:
            sv = value.view(np.int64)
            ok = fill_zero & (n64[:, 2] == 0) & ((value >> np.uint64(bits)) == 0)
        np_type = np.int32 if arrow_type == pa.int32() else np.int64
        return ok, lambda keep: pa.array(_rows(sv, keep).astype(np_type), type=arrow_type)

    # Wide integer -> decimal128(38, 0). Arrow stores a little-endian two's complement
    # 128-bit integer: the low 16 bytes of a word that passes the checks below are exactly
    # that integer once each 8-byte half is byte-swapped.
    halves = np.empty((m, 2), dtype=np.uint64)
    halves[:, 0] = raw8[:, 24:].view(">u8")[:, 0]
    halves[:, 1] = raw8[:, 16:24].view(">u8")[:, 0]
    lo, hi = halves[:, 0], halves[:, 1]
    if signed:
        top = min((1 << (bits - 1)) - 1, _DECIMAL_MAX)
        # A negative v is stored as 2**128 + v in the low half, so v >= -limit reads as
        # low >= 2**128 - limit (which is >= 2**127: bit 127 carries the sign).
        bottom = (1 << 128) - min(1 << (bits - 1), _DECIMAL_MAX)
        ok = (fill_zero & _le128(hi, lo, top)) | (
            (n64[:, 0] == _ONES) & (n64[:, 1] == _ONES) & _ge128(hi, lo, bottom)
        )
    else:
        ok = fill_zero & _le128(hi, lo, min((1 << bits) - 1, _DECIMAL_MAX))

    def build(keep: np.ndarray | None) -> pa.Array:
        out = _rows(halves, keep)
        return pa.Array.from_buffers(DECIMAL_TYPE, len(out), [None, pa.py_buffer(np.ascontiguousarray(out))])

    return ok, build


def _describe_word(param: Param, word: bytes) -> str:
    """Why ``word`` is not a valid ``param`` value (for error messages)."""
    t = param.abi_type
    if t == "address":
        return f"word 0x{word.hex()} is not an address (its 12 high bytes must be zero)"
    if t == "bool":
        return f"word 0x{word.hex()} is not a bool (must be 0 or 1)"
    bits = int_bits(t)
    signed = t.startswith("int")
    value = int.from_bytes(word, "big", signed=signed)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not lo <= value <= hi:
        return f"word 0x{word.hex()} is not a valid {t}"
    return f"value {value} does not fit DECIMAL(38,0) (its magnitude must be below 10^38)"
