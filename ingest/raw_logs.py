"""The raw-log table from ``eth_getLogs`` answers: JSON hex strings checked and turned into
``RAW_LOG_SCHEMA`` columns, vectorised, so a malformed log from a node is refused with its
position, block number and log index before anything is decoded or written.
"""

from __future__ import annotations

import gc
import itertools
import re
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from postmortem.ingest.events import RAW_LOG_SCHEMA, DecodeError
from postmortem.ingest.hexcodec import _bitmap, _fixed_width_strings, _hex_strings, _nibbles, _var_parts

__all__ = ["raw_logs_from_rpc"]


_RPC_KEYS = ("blockNumber", "blockHash", "transactionHash", "transactionIndex", "logIndex", "address", "topics", "data")
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,16}")


def _rpc_error(logs: Sequence, i: int, what: str) -> DecodeError:
    log = logs[i] if isinstance(logs[i], dict) else {}
    block, index = log.get("blockNumber"), log.get("logIndex")

    def as_int(v):
        return int(v, 16) if isinstance(v, str) and _QUANTITY.fullmatch(v) else None

    return DecodeError(
        f"eth_getLogs result #{i} (block {block!r}, log index {index!r}): {what}; the node returned a "
        "malformed log: fetch this block range again, or from another node",
        block_number=as_int(block),
        log_index=as_int(index),
    )


def _shape_error(logs: Sequence) -> DecodeError:
    """Slow path: the first log that is not an object with every field."""
    for i, log in enumerate(logs):
        if not isinstance(log, dict):
            return _rpc_error(logs, i, f"expected a JSON object, got {type(log).__name__}")
        for key in _RPC_KEYS:
            if key not in log:
                return _rpc_error(logs, i, f"field {key!r} is missing")
    raise AssertionError("unreachable: every log has every field")


def _strings(logs: Sequence, values: Sequence, key: str, expect: str, owner: np.ndarray | None = None) -> pa.Array:
    """One field of every log as an Arrow string array; non-strings are an error.

    ``owner[j]`` is the log value j belongs to (default: value j is log j's).
    """
    try:
        arr = pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError):
        arr = None
    if arr is None or arr.null_count:
        j = next(j for j, v in enumerate(values) if not isinstance(v, str))
        i = j if owner is None else int(owner[j])
        raise _rpc_error(logs, i, f"field {key!r} must be {expect}, got {type(values[j]).__name__} {values[j]!r}")
    return arr


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _hex_fixed(logs, values, owner, key: str, nbytes: int, expect: str) -> np.ndarray:
    """``0x`` + 2*nbytes hex digit strings -> (n, nbytes) uint8, validated vectorised.

    ``owner[j]`` is the log that value j belongs to (for the error message).
    """
    arr = _strings(logs, values, key, expect, owner)
    n = len(arr)
    width = 2 + 2 * nbytes
    offsets, chars = _var_parts(arr)
    bad = np.diff(offsets) != width
    if not bad.any():
        grid = chars[offsets[0] : offsets[-1]].reshape(n, width)
        nib = _nibbles(grid[:, 2:])
        bad = (grid[:, 0] != ord("0")) | (grid[:, 1] != ord("x"))
        if (nib == 0xFF).any():  # rare: only then find the rows
            bad |= (nib == 0xFF).any(axis=1)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise _rpc_error(logs, int(owner[j]), f"field {key!r} must be {expect}, got {_show(values[j])}")
    nib = nib.reshape(n, nbytes, 2)
    return (nib[:, :, 0] << 4) | nib[:, :, 1]


def _hex_binary(logs, values, key: str) -> pa.Array:
    """``0x``-prefixed even-length hex strings -> ``binary`` array, validated vectorised."""
    arr = _strings(logs, values, key, "0x-prefixed hex bytes")
    n = len(arr)
    offsets, chars = _var_parts(arr)
    base, lengths = offsets[0], np.diff(offsets)
    starts = offsets[:-1] - base
    chars = chars[base : offsets[-1]]
    bad = (lengths < 2) | (lengths % 2 == 1)
    if not bad.any():
        bad = (chars[starts] != ord("0")) | (chars[starts + 1] != ord("x"))
    if not bad.any():
        keep = np.ones(len(chars), dtype=bool)
        keep[starts] = False
        keep[starts + 1] = False
        nib = _nibbles(chars[keep])
        wrong = np.flatnonzero(nib == 0xFF)
        if len(wrong):
            bad = np.zeros(n, dtype=bool)
            # The j-th hex digit belongs to the log whose digit range contains it.
            digit_starts = starts - 2 * np.arange(n)
            bad[np.searchsorted(digit_starts, wrong[0], side="right") - 1] = True
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _rpc_error(logs, i, f"field {key!r} must be 0x-prefixed hex with an even number of digits, got {_show(values[i])}")
    out = (nib[0::2] << 4) | nib[1::2]
    new_offsets = ((offsets - base - 2 * np.arange(n + 1)) // 2).astype(np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(new_offsets), pa.py_buffer(out)])


def _quantities(logs, values, key: str, bits: int, np_type) -> np.ndarray:
    """JSON-RPC quantities (``0x``-prefixed hex) that must fit a signed ``bits + 1``-bit int."""
    arr = _strings(logs, values, key, "a 0x hex quantity")
    # Few distinct values per batch (one block number per block): check and parse each once.
    encoded = pc.dictionary_encode(arr)
    distinct = encoded.dictionary.to_pylist()
    parsed = []
    for j, s in enumerate(distinct):
        if not _QUANTITY.fullmatch(s) or int(s, 16) >= 1 << bits:
            i = int(np.flatnonzero(encoded.indices.to_numpy() == j)[0])
            raise _rpc_error(logs, i, f"field {key!r} must be a 0x hex quantity below 2^{bits}, got {_show(s)}")
        parsed.append(int(s, 16))
    return np.asarray(parsed, dtype=np_type)[encoded.indices.to_numpy()]


def raw_logs_from_rpc(logs: Iterable[dict]) -> pa.Table:
    """Build a ``RAW_LOG_SCHEMA`` table from ``eth_getLogs`` results (JSON hex strings).

    Each log needs ``blockNumber``, ``blockHash``, ``transactionHash``, ``transactionIndex``,
    ``logIndex``, ``address``, ``topics`` (a list of 0 to 4 32-byte words) and ``data``,
    written as the JSON-RPC spec writes them (hex strings; upper-case hex digits are
    accepted and lower-cased). Logs flagged ``removed: true`` (dropped by a reorg) are
    refused. A malformed log raises :class:`DecodeError` naming its position in ``logs``,
    its block number and its log index. Order is kept.
    """
    logs = logs if isinstance(logs, (list, tuple)) else list(logs)
    n = len(logs)
    if n == 0:
        return RAW_LOG_SCHEMA.empty_table()
    # Millions of short-lived tuples would trigger needless cyclic GC passes.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _raw_logs_from_rpc(logs, n)
    finally:
        if gc_was_enabled:
            gc.enable()


def _raw_logs_from_rpc(logs: Sequence, n: int) -> pa.Table:
    try:
        columns = [[log[key] for log in logs] for key in _RPC_KEYS]
    except (KeyError, TypeError, IndexError):
        raise _shape_error(logs) from None
    removed = [log.get("removed") for log in logs]
    if any(removed):
        raise _rpc_error(logs, next(i for i, flag in enumerate(removed) if flag),
                         "the log is flagged removed (a reorg dropped it)")
    del removed
    fast = _columns_fast(columns, n)
    return fast if fast is not None else _columns_checked(logs, columns, n)


# -- the fast path --------------------------------------------------------------------------
# Each field of every log is joined into one text and converted at C speed (``str.join``,
# ``bytes.fromhex``, NumPy on the joined bytes). It takes only logs that are plainly well formed
# and gives up (None) at the first irregularity of any kind; ``_columns_checked`` then builds the
# same table or names the malformed log. Both give byte-identical tables on well-formed input
# (tests/test_ingest_speed_equivalence.py).


def _fast_quantities(values: list, bits: int, np_type) -> np.ndarray | None:
    try:
        distinct = set(values)
    except TypeError:  # an unhashable value (a list, a dict): not a quantity
        return None
    parsed = {}
    for text in distinct:
        if type(text) is not str or not _QUANTITY.fullmatch(text):
            return None
        value = int(text, 16)
        if value >= 1 << bits:
            return None
        parsed[text] = value
    return np.fromiter(map(parsed.__getitem__, values), dtype=np_type, count=len(values))


def _fast_text(values: list) -> str | None:
    """Every value joined, when each is an ASCII ``str``."""
    try:
        text = "".join(values)
    except TypeError:
        return None
    return text if text.isascii() else None


def _fast_fixed(values: list, nbytes: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``0x`` + 2*nbytes hex digits each -> ((n, width) lower-case ASCII, (n, nbytes) uint8)."""
    n, width = len(values), 2 + 2 * nbytes
    text = _fast_text(values)
    # No well-formed value holds an ``X``; so lower-casing cannot turn a ``0X`` prefix into ``0x``.
    if text is None or len(text) != n * width or "X" in text or set(map(len, values)) - {width}:
        return None
    grid = np.frombuffer(text.lower().encode("ascii"), dtype=np.uint8).reshape(n, width)
    if not ((grid[:, 0] == ord("0")).all() and (grid[:, 1] == ord("x")).all()):
        return None
    try:
        raw = bytes.fromhex(grid[:, 2:].tobytes().decode("ascii"))
    except ValueError:
        return None
    if len(raw) != n * nbytes:  # ``fromhex`` skips ASCII white space: such a value is malformed
        return None
    return grid, np.frombuffer(raw, dtype=np.uint8).reshape(n, nbytes)


def _fast_binary(values: list) -> pa.Array | None:
    """``0x``-prefixed even-length hex strings -> ``binary``."""
    n = len(values)
    text = _fast_text(values)
    if text is None:
        return None
    lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)
    if ((lengths < 2) | (lengths % 2 == 1)).any():
        return None
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    if not ((chars[starts] == ord("0")).all() and (chars[starts + 1] == ord("x")).all()):
        return None
    keep = np.ones(len(chars), dtype=bool)
    keep[starts] = False
    keep[starts + 1] = False
    try:
        raw = bytes.fromhex(chars[keep].tobytes().decode("ascii"))
    except ValueError:
        return None
    if 2 * len(raw) != len(chars) - 2 * n or len(raw) > np.iinfo(np.int32).max:
        return None
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum((lengths - 2) // 2, out=offsets[1:])
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(raw)])


def _columns_fast(columns: list[list], n: int) -> pa.Table | None:
    block_numbers, block_hashes, tx_hashes, tx_indexes, log_indexes, addresses, topics, datas = columns
    block_number = _fast_quantities(block_numbers, 63, np.int64)
    transaction_index = _fast_quantities(tx_indexes, 31, np.int32)
    log_index = _fast_quantities(log_indexes, 31, np.int32)
    if block_number is None or transaction_index is None or log_index is None:
        return None
    strings = []
    for values, nbytes in ((block_hashes, 32), (tx_hashes, 32), (addresses, 20)):
        got = _fast_fixed(values, nbytes)
        if got is None:
            return None
        strings.append(_fixed_width_strings(got[0]))
    data = _fast_binary(datas)
    if data is None or set(map(type, topics)) != {list}:
        return None
    counts = np.fromiter(map(len, topics), dtype=np.int64, count=n)
    if (counts > 4).any():
        return None
    flat = list(itertools.chain.from_iterable(topics))
    if flat:
        got = _fast_fixed(flat, 32)
        if got is None:
            return None
        words = got[1]
    else:
        words = np.zeros((0, 32), np.uint8)
    return _assemble(block_number, strings[0], strings[1], transaction_index, log_index, strings[2],
                     _topic_arrays(words, counts, n), data)


def _topic_arrays(words: np.ndarray, counts: np.ndarray, n: int) -> list[pa.Array]:
    first = np.cumsum(counts) - counts
    arrays = []
    for k in range(4):
        present = counts > k
        block = np.zeros((n, 32), dtype=np.uint8)
        block[present] = words[first[present] + k]
        arrays.append(pa.Array.from_buffers(pa.binary(32), n, [_bitmap(present), pa.py_buffer(block)]))
    return arrays


def _assemble(block_number, block_hash, tx_hash, transaction_index, log_index, address, topic_arrays, data) -> pa.Table:
    arrays = [
        pa.array(block_number, pa.int64()),
        block_hash,
        tx_hash,
        pa.array(transaction_index, pa.int32()),
        pa.array(log_index, pa.int32()),
        address,
        *topic_arrays,
        data,
    ]
    return pa.Table.from_arrays(arrays, schema=RAW_LOG_SCHEMA)


# -- the checked path -----------------------------------------------------------------------


def _columns_checked(logs: Sequence, columns: list[list], n: int) -> pa.Table:
    """Every field validated with the log it belongs to: builds the table or raises the
    ``DecodeError`` naming the first malformed log."""
    block_numbers, block_hashes, tx_hashes, tx_indexes, log_indexes, addresses, topics, datas = columns
    own = np.arange(n)

    block_number = _quantities(logs, block_numbers, "blockNumber", 63, np.int64)
    transaction_index = _quantities(logs, tx_indexes, "transactionIndex", 31, np.int32)
    log_index = _quantities(logs, log_indexes, "logIndex", 31, np.int32)
    block_hash = _hex_fixed(logs, block_hashes, own, "blockHash", 32, "a 32-byte 0x hex hash")
    tx_hash = _hex_fixed(logs, tx_hashes, own, "transactionHash", 32, "a 32-byte 0x hex hash")
    address = _hex_fixed(logs, addresses, own, "address", 20, "a 20-byte 0x hex address")
    data = _hex_binary(logs, datas, "data")

    if set(map(type, topics)) != {list}:
        i = next(i for i, t in enumerate(topics) if type(t) is not list)
        raise _rpc_error(logs, i, f"'topics' must be a list, got {type(topics[i]).__name__}")
    counts = np.fromiter(map(len, topics), dtype=np.int64, count=n)
    if (counts > 4).any():
        i = int(np.argmax(counts > 4))
        raise _rpc_error(logs, i, f"'topics' has {counts[i]} entries, a log has at most 4")
    flat = list(itertools.chain.from_iterable(topics))
    owner = np.repeat(own, counts)
    words = (
        _hex_fixed(logs, flat, owner, "topics", 32, "a list of 32-byte 0x hex words")
        if flat
        else np.zeros((0, 32), np.uint8)
    )
    return _assemble(block_number, _hex_strings(block_hash), _hex_strings(tx_hash), transaction_index, log_index,
                     _hex_strings(address), _topic_arrays(words, counts, n), data)
