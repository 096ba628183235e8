"""The hex codec under ingest's decoders: bytes <-> ``0x`` hex strings and Arrow <-> NumPy views,
done on whole columns with lookup tables rather than per value.

Both the event decoder (``ingest.decode``) and the builder of the raw-log table from
``eth_getLogs`` answers (``ingest.raw_logs``) stand on these; the buffers are built natively,
so the module refuses a big-endian host at import.
"""

from __future__ import annotations

import sys

import numpy as np
import pyarrow as pa

# Arrow buffers are little-endian; the decimal and offset buffers below are built natively.
if sys.byteorder != "little":  # pragma: no cover - no big-endian CPython target in sight
    raise ImportError("postmortem.ingest.hexcodec builds little-endian Arrow buffers natively; big-endian hosts are unsupported")

_U64_MAX = (1 << 64) - 1
_ONES = np.uint64(_U64_MAX)
_DECIMAL_MAX = 10**38 - 1  # largest magnitude DECIMAL(38,0) holds
_MAX_STRING_BYTES = (1 << 31) - 1  # Arrow ``string`` offsets are int32

# Byte -> its two lowercase ASCII hex digits, stored so that ``.view(uint8)`` reads in order.
_HEX_PAIRS = np.frombuffer(b"".join(b"%02x" % i for i in range(256)), dtype=np.uint16)
# ASCII byte -> nibble value; 0xFF marks a byte that is not a hex digit.
_NIBBLE = np.full(256, 0xFF, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i
del _i, _c


# ======================================================================================
# Arrow <-> NumPy helpers
# ======================================================================================


def _single_chunk(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.Array):
        return column
    if column.num_chunks == 1:
        return column.chunk(0)
    return column.combine_chunks()


def _valid_mask(arr: pa.Array) -> np.ndarray:
    """Validity of each slot as a NumPy bool array."""
    n = len(arr)
    if arr.null_count == 0:
        return np.ones(n, dtype=bool)
    if arr.null_count == n:
        return np.zeros(n, dtype=bool)
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset :].astype(bool)


def _fixed32(arr: pa.Array) -> np.ndarray:
    """A ``fixed_size_binary(32)`` array as an ``(n, 32)`` uint8 view (null slots hold junk)."""
    n = len(arr)
    buf = arr.buffers()[1]
    if buf is None or n == 0:
        return np.zeros((n, 32), dtype=np.uint8)
    return np.frombuffer(buf, dtype=np.uint8)[arr.offset * 32 : (arr.offset + n) * 32].reshape(n, 32)


def _var_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 offsets of length n+1, uint8 values) of a ``binary``/``string`` array."""
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32)[arr.offset : arr.offset + n + 1].astype(np.int64)
    values = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, np.uint8)
    return offsets, values


def _bitmap(mask: np.ndarray) -> pa.Buffer | None:
    return None if mask.all() else pa.py_buffer(np.packbits(mask, bitorder="little"))


def _fixed_width_strings(chars: np.ndarray, type_: pa.DataType = pa.string()) -> pa.Array | pa.ChunkedArray:
    """An ``(n, width)`` uint8 array as n strings of ``width`` bytes each."""
    n, width = chars.shape
    per_chunk = max(1, _MAX_STRING_BYTES // max(width, 1))
    if n > per_chunk:  # int32 offsets: split columns above 2 GiB
        return pa.chunked_array(
            [_fixed_width_strings(chars[i : i + per_chunk], type_) for i in range(0, n, per_chunk)], type=type_
        )
    chars = np.ascontiguousarray(chars)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(type_, n, [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _hex_strings(block: np.ndarray) -> pa.Array | pa.ChunkedArray:
    """Rows of an ``(n, k)`` uint8 array as ``0x``-prefixed lowercase hex strings."""
    n, k = block.shape
    chars = np.empty((n, 2 + 2 * k), dtype=np.uint8)
    chars[:, 0] = ord("0")
    chars[:, 1] = ord("x")
    # In slices, so that the intp copy of the indices NumPy makes stays in cache.
    step = max(1, (1 << 19) // max(k, 1))
    for i in range(0, n, step):
        part = block[i : i + step]
        chars[i : i + step, 2:] = _HEX_PAIRS[part].view(np.uint8).reshape(len(part), 2 * k)
    return _fixed_width_strings(chars)


def _rows(arr: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    return arr if keep is None else arr[keep]


def _le128(hi: np.ndarray, lo: np.ndarray, bound: int) -> np.ndarray:
    """Unsigned 128-bit ``(hi, lo) <= bound`` on native uint64 halves."""
    bh, bl = np.uint64(bound >> 64), np.uint64(bound & _U64_MAX)
    ok = hi <= bh
    tie = np.flatnonzero(hi == bh)  # rare: only then does the low half matter
    if len(tie):
        ok[tie] = lo[tie] <= bl
    return ok


def _ge128(hi: np.ndarray, lo: np.ndarray, bound: int) -> np.ndarray:
    """Unsigned 128-bit ``(hi, lo) >= bound`` on native uint64 halves."""
    bh, bl = np.uint64(bound >> 64), np.uint64(bound & _U64_MAX)
    ok = hi >= bh
    tie = np.flatnonzero(hi == bh)
    if len(tie):
        ok[tie] = lo[tie] >= bl
    return ok



def _nibbles(chars: np.ndarray) -> np.ndarray:
    """ASCII hex digits -> nibble values (0xFF for a non-digit), in cache-sized slices."""
    out = np.empty(chars.shape, dtype=np.uint8)
    step = max(1, (1 << 20) // max(1, chars.size // max(1, len(chars))))
    for i in range(0, len(chars), step):
        out[i : i + step] = _NIBBLE[chars[i : i + step]]
    return out
