"""The raw-log table from ``eth_getLogs`` answers: JSON hex strings checked and turned into
``RAW_LOG_SCHEMA`` columns, vectorised, so a malformed log from a node is refused with its
position, block number and log index before anything is decoded or written.
"""

from __future__ import annotations

import binascii
import gc
import itertools
import re
from typing import Iterable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from postmortem.ingest.events import RAW_LOG_SCHEMA, DecodeError
from postmortem.ingest.hexcodec import _bitmap, _fixed_width_strings, _nibbles, _var_parts

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


def _hex_fixed(logs, values, owner, key: str, nbytes: int, expect: str, text: bool = False):
    """``0x`` + 2*nbytes hex digit strings -> (n, nbytes) uint8, validated vectorised.

    ``owner[j]`` is the log that value j belongs to (for the error message). With ``text``,
    returns the lower-cased ``(n, 2 + 2*nbytes)`` ASCII instead, for a column kept as hex text.
    """
    arr = _strings(logs, values, key, expect, owner)
    n = len(arr)
    width = 2 + 2 * nbytes
    offsets, chars = _var_parts(arr)
    bad = np.diff(offsets) != width
    if not bad.any():
        grid = chars[offsets[0] : offsets[-1]].reshape(n, width)
        bad = (grid[:, 0] != ord("0")) | (grid[:, 1] != ord("x"))
        if not bad.any():
            digits = grid[:, 2:].tobytes()
            try:
                # One C pass; it refuses any character that is not a hex digit (white space too).
                raw = binascii.unhexlify(digits)
            except binascii.Error:
                raw = None  # rare: find the rows below
            if raw is not None:
                if text:
                    return np.frombuffer(grid.tobytes().lower(), dtype=np.uint8).reshape(n, width)
                return np.frombuffer(raw, dtype=np.uint8).reshape(n, nbytes)
            bad = (_nibbles(grid[:, 2:]) == 0xFF).any(axis=1)
    j = int(np.flatnonzero(bad)[0])
    raise _rpc_error(logs, int(owner[j]), f"field {key!r} must be {expect}, got {_show(values[j])}")


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
        digits = chars[keep]
        try:
            out = binascii.unhexlify(digits.tobytes())  # one C pass, refusing any non-hex character
        except binascii.Error:
            wrong = np.flatnonzero(_nibbles(digits) == 0xFF)  # rare: find the log
            bad = np.zeros(n, dtype=bool)
            # The j-th hex digit belongs to the log whose digit range contains it.
            digit_starts = starts - 2 * np.arange(n)
            bad[np.searchsorted(digit_starts, wrong[0], side="right") - 1] = True
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _rpc_error(logs, i, f"field {key!r} must be 0x-prefixed hex with an even number of digits, got {_show(values[i])}")
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
        # One list per field (a list comprehension each beats a tuple per log and a transpose).
        columns = [[log[key] for log in logs] for key in _RPC_KEYS]
    except (KeyError, TypeError, IndexError):
        raise _shape_error(logs) from None
    removed = [log.get("removed") for log in logs]
    if any(removed):
        i = next(i for i, flag in enumerate(removed) if flag)
        raise _rpc_error(logs, i, "the log is flagged removed (a reorg dropped it)")
    del removed
    block_numbers, block_hashes, tx_hashes, tx_indexes, log_indexes, addresses, topics, datas = columns
    own = np.arange(n)

    block_number = _quantities(logs, block_numbers, "blockNumber", 63, np.int64)
    transaction_index = _quantities(logs, tx_indexes, "transactionIndex", 31, np.int32)
    log_index = _quantities(logs, log_indexes, "logIndex", 31, np.int32)
    # Hashes and addresses stay text: validated, then lower-cased as they are.
    block_hash = _hex_fixed(logs, block_hashes, own, "blockHash", 32, "a 32-byte 0x hex hash", text=True)
    tx_hash = _hex_fixed(logs, tx_hashes, own, "transactionHash", 32, "a 32-byte 0x hex hash", text=True)
    address = _hex_fixed(logs, addresses, own, "address", 20, "a 20-byte 0x hex address", text=True)
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
    first = np.cumsum(counts) - counts
    topic_arrays = []
    for k in range(4):
        present = counts > k
        block = np.zeros((n, 32), dtype=np.uint8)
        block[present] = words[first[present] + k]
        topic_arrays.append(pa.Array.from_buffers(pa.binary(32), n, [_bitmap(present), pa.py_buffer(block)]))

    arrays = [
        pa.array(block_number, pa.int64()),
        _fixed_width_strings(block_hash),
        _fixed_width_strings(tx_hash),
        pa.array(transaction_index, pa.int32()),
        pa.array(log_index, pa.int32()),
        _fixed_width_strings(address),
        *topic_arrays,
        data,
    ]
    return pa.Table.from_arrays(arrays, schema=RAW_LOG_SCHEMA)
