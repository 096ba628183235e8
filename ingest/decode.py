"""Vectorised decoding of raw Ethereum logs into one Arrow table per event.

The decoder never calls an ABI library per log. It groups the logs of one event, gathers
their ``data`` into one contiguous ``(n_logs, n_words * 32)`` byte block and their topics
into ``(n_logs, 32)`` blocks, and turns each 32-byte word column into an Arrow column with
NumPy: addresses through a byte -> hex lookup table, integers by copying the low 16 bytes
of each big-endian word into the little-endian 128-bit integers that Arrow's
``decimal128(38, 0)`` stores. Only events with a ``string`` parameter (rare configurator
events) take a per-log path, for their string tail.

Every word is checked before it becomes a value: address padding, integer range (including
the ``< 10**38`` limit of DECIMAL(38,0)), ``bool`` words other than 0 and 1, the topic count
and the ``data`` length the event's layout requires. A log that fails is never turned into
a row: with ``strict=True`` (the default) :class:`DecodeError` names its block number, log
index, event and field; with ``strict=False`` it goes to the ``undecoded`` table with the
reason.

:func:`raw_logs_from_rpc` (in ``ingest.raw_logs``, re-exported here) builds the raw-log table
from ``eth_getLogs`` JSON results; the hex and Arrow helpers both stand on are ``ingest.hexcodec``,
and the check and conversion of one word column is ``ingest.abi_words``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyarrow as pa

from postmortem.ingest.abi_words import _convert, _describe_word
from postmortem.ingest.events import (
    COMMON_COLUMNS,
    EVENTS,
    RAW_LOG_SCHEMA,
    TABLE_SCHEMAS,
    UNDECODED_SCHEMA,
    UNDECODED_TABLE,
    DecodeError,
    Event,
)
from postmortem.ingest.hexcodec import (
    _fixed32,
    _fixed_width_strings,
    _single_chunk,
    _valid_mask,
    _var_parts,
)
from postmortem.ingest.raw_logs import raw_logs_from_rpc

__all__ = ["DecodeError", "RAW_LOG_SCHEMA", "decode_logs", "raw_logs_from_rpc"]


# ======================================================================================
# The catalogue compiled for routing
# ======================================================================================


@dataclass(frozen=True)
class _Router:
    """The catalogue's topic0s behind a perfect hash of their first 8 bytes.

    A log's group is ``slots[(first8 * multiplier) >> shift]`` (then checked against all
    32 bytes): two vector operations instead of a binary search per log.
    """

    events: tuple[Event, ...]
    multiplier: np.uint64
    shift: np.uint64
    slots: np.ndarray  # int16 slot -> group, -1 when no catalogue topic0 hashes there
    full: np.ndarray  # (G, 4) uint64: the full topic0 of each group, native order
    route: np.ndarray  # (G, 6) int16: [group, topic count 0..4, or 5 for a gap] -> event index or -1
    members: tuple[tuple[int, ...], ...]  # event indices per group


def _perfect_hash(keys: np.ndarray) -> tuple[np.uint64, int]:
    """A multiplier and a bit count mapping ``keys`` to distinct slots (multiply-shift)."""
    rng = np.random.default_rng(0x706D)  # deterministic: the same catalogue gets the same table
    bits = max(6, int(len(keys) * 4).bit_length())
    for _ in range(100_000):
        multiplier = np.uint64(int(rng.integers(1, 1 << 63)) * 2 + 1)
        slots = (keys * multiplier) >> np.uint64(64 - bits)
        if len(np.unique(slots)) == len(keys):
            return multiplier, bits
    raise ValueError("no perfect hash for the catalogue topic0s (two share their first 8 bytes?)")


@functools.lru_cache(maxsize=16)
def _router(events: tuple[Event, ...]) -> _Router:
    topic0s = sorted({ev.topic0 for ev in events})
    full = np.frombuffer(b"".join(topic0s), dtype=np.uint64).reshape(-1, 4).copy()
    multiplier, bits = _perfect_hash(full[:, 0])
    shift = np.uint64(64 - bits)
    slots = np.full(1 << bits, -1, dtype=np.int16)
    slots[(full[:, 0] * multiplier) >> shift] = np.arange(len(topic0s), dtype=np.int16)
    route = np.full((len(topic0s), 6), -1, dtype=np.int16)
    members = []
    for g, t0 in enumerate(topic0s):
        group = tuple(i for i, ev in enumerate(events) if ev.topic0 == t0)
        for i in group:
            if route[g, events[i].n_topics] != -1:
                raise ValueError(f"{events[i].signature}: two layouts with the same topic0 and topic count")
            route[g, events[i].n_topics] = i
        members.append(group)
    return _Router(events, multiplier, shift, slots, full, route, tuple(members))


# ======================================================================================
# One batch of raw logs, viewed for gathering
# ======================================================================================


class _Batch:
    """Zero-copy NumPy views of a raw-log table, and the gathers the decoder needs."""

    def __init__(self, raw: pa.Table) -> None:
        if not isinstance(raw, pa.Table):
            raise TypeError(f"decode_logs expects a pyarrow.Table with RAW_LOG_SCHEMA, got {type(raw).__name__}")
        self.cols: dict[str, pa.Array] = {}
        for f in RAW_LOG_SCHEMA:
            if f.name not in raw.column_names:
                raise DecodeError(
                    f"the raw logs table has no column {f.name!r}; build it with raw_logs_from_rpc() "
                    "or with RAW_LOG_SCHEMA"
                )
            col = _single_chunk(raw.column(f.name))
            if col.type != f.type:
                try:
                    col = col.cast(f.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DecodeError(f"raw logs column {f.name!r} is {col.type}, expected {f.type}: {exc}") from exc
            self.cols[f.name] = col
        self.n = raw.num_rows
        self.topics = [_fixed32(self.cols[f"topic{k}"]) for k in range(4)]
        self.present = [_valid_mask(self.cols[f"topic{k}"]) for k in range(4)]
        self.offsets, self.values = _var_parts(self.cols["data"])
        self.lengths = np.diff(self.offsets)
        self.lengths[~_valid_mask(self.cols["data"])] = 0  # a null data slot counts as empty
        # 32-byte words of the data buffer, to gather whole words when logs start aligned.
        usable = len(self.values) // 32 * 32
        self.data_words = self.values[:usable].view("V32")
        # Fixed-width string columns (hashes, addresses) are gathered as NumPy rows.
        self.fixed: dict[str, np.ndarray | None] = {}
        for name in ("block_hash", "transaction_hash", "address"):
            col = self.cols[name]
            offsets, values = _var_parts(col)
            widths = np.diff(offsets)
            width = int(widths[0]) if len(widths) else 0
            if len(widths) and width > 0 and col.null_count == 0 and (widths == width).all():
                self.fixed[name] = values[offsets[0] : offsets[-1]].view(f"V{width}")
            else:
                self.fixed[name] = None

    def take_common(self, rows: np.ndarray) -> dict[str, pa.Array]:
        out = {}
        index = None
        for name in COMMON_COLUMNS:
            fixed = self.fixed.get(name)
            if fixed is not None:
                picked = np.take(fixed, rows)
                out[name] = _fixed_width_strings(picked.view(np.uint8).reshape(len(rows), fixed.itemsize))
            else:
                index = pa.array(rows) if index is None else index
                out[name] = self.cols[name].take(index)
        return out

    def topic_block(self, k: int, rows: np.ndarray) -> np.ndarray:
        """Topic k of ``rows`` as a contiguous (m, 32) uint8 array."""
        return np.take(self.topics[k].reshape(-1).view("V32"), rows).view(np.uint8).reshape(len(rows), 32)

    def data_block(self, rows: np.ndarray, size: int) -> np.ndarray:
        """``data`` of ``rows`` (each exactly ``size`` bytes) as a contiguous (m, size) array."""
        m = len(rows)
        if size == 0:
            return np.zeros((m, 0), dtype=np.uint8)
        starts = self.offsets[rows]
        if not (starts & 31).any():
            # Whole-word gather: an index per 32 bytes rather than per byte.
            first = starts >> 5
            idx = first[:, None] + np.arange(size // 32)
            return np.take(self.data_words, idx).view(np.uint8).reshape(m, size)
        taken = self.cols["data"].take(pa.array(rows))
        return np.frombuffer(taken.buffers()[2], dtype=np.uint8)[: m * size].reshape(m, size)

    def where(self, row: int) -> tuple[str, int, int]:
        """A human description of raw row ``row`` and its (block number, log index)."""
        block = self.cols["block_number"][row].as_py()
        log_index = self.cols["log_index"][row].as_py()
        tx = self.cols["transaction_hash"][row].as_py()
        emitter = self.cols["address"][row].as_py()
        return f"block {block}, log index {log_index} (transaction {tx}, emitter {emitter})", block, log_index


# ======================================================================================
# Problems: logs that match a catalogue topic0 but cannot be decoded
# ======================================================================================


class _Problems:
    """Bad rows (raw row indices) with a reason code; explains one in detail on demand."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.codes: list[np.ndarray] = []
        self.reasons: list[str] = []  # short reason per code (the ``undecoded.reason`` value)
        self.events: list[str] = []  # event name(s) per code
        self.fields: list[str | None] = []  # Solidity parameter at fault per code, if any
        self.explain: list[Callable[[int], str]] = []  # raw row -> detailed reason

    def add(
        self, rows: np.ndarray, event: str, reason: str, explain: Callable[[int], str], field: str | None = None
    ) -> None:
        if len(rows) == 0:
            return
        self.codes.append(np.full(len(rows), len(self.reasons), dtype=np.int32))
        self.rows.append(rows)
        self.reasons.append(reason)
        self.events.append(event)
        self.fields.append(field)
        self.explain.append(explain)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def merged(self) -> tuple[np.ndarray, np.ndarray]:
        """All bad rows in raw order, with their codes."""
        rows = np.concatenate(self.rows)
        codes = np.concatenate(self.codes)
        order = np.argsort(rows, kind="stable")
        return rows[order], codes[order]


# ======================================================================================
# decode_logs
# ======================================================================================


def decode_logs(
    raw: pa.Table,
    *,
    strict: bool = True,
    events: Sequence[Event] | None = None,
) -> dict[str, pa.Table]:
    """Decode raw logs (``RAW_LOG_SCHEMA``) into one table per event table name.

    Returns every table of the catalogue, empty ones included (with their schema), plus
    ``"undecoded"``. Rows keep the order of ``raw``. Logs whose topic0 is not in the
    catalogue (other events of the same contracts, anonymous logs) are ignored.

    A log whose topic0 is in the catalogue but whose topic count, ``data`` length or any
    word does not fit the event's layout (an ERC-721 ``Transfer`` with 4 topics, short
    data, a uint256 >= 10**38, a bool word other than 0/1, a dirty address word ...)
    never becomes a row: ``strict=True`` raises :class:`DecodeError` naming the earliest
    such log (block number, log index, event, field); ``strict=False`` puts it in
    ``"undecoded"`` with its reason, so ``result["undecoded"].num_rows`` is the skip count.

    ``events`` replaces the catalogue (default :data:`ingest.events.EVENTS`).
    """
    catalogue = EVENTS if events is None else tuple(events)
    router = _router(catalogue)
    batch = _Batch(raw)
    problems = _Problems()
    pieces: dict[str, list[tuple[np.ndarray, dict[str, pa.Array]]]] = {}

    if batch.n:
        spec = _route(batch, router, problems)
        order = np.argsort(spec, kind="stable")  # int16 keys: a radix sort
        bounds = np.searchsorted(spec[order], np.arange(len(catalogue) + 1))
        for i, ev in enumerate(catalogue):
            rows = order[bounds[i] : bounds[i + 1]]  # ascending, as the sort is stable
            if len(rows) == 0:
                continue
            decoder = _decode_dynamic if ev.is_dynamic else _decode_static
            got = decoder(ev, rows, batch, problems)
            if got is not None:
                pieces.setdefault(ev.table, []).append(got)

    if problems and strict:
        bad_rows, bad_codes = problems.merged()
        row, code = int(bad_rows[0]), int(bad_codes[0])
        where, block, log_index = batch.where(row)
        more = f" ({len(bad_rows) - 1} more log(s) of this batch do not decode either)" if len(bad_rows) > 1 else ""
        raise DecodeError(
            f"{where}: {problems.explain[code](row)}{more}; check that the emitter really is the "
            f"contract this event belongs to, or decode with strict=False to count such logs in "
            f"the '{UNDECODED_TABLE}' table",
            block_number=block,
            log_index=log_index,
            event=problems.events[code],
            field=problems.fields[code],
        )

    out = {table: _assemble(schema, batch, pieces.get(table, [])) for table, schema in _schemas(catalogue).items()}
    out[UNDECODED_TABLE] = _undecoded(batch, problems)
    return out


def _schemas(catalogue: tuple[Event, ...]) -> dict[str, pa.Schema]:
    if catalogue is EVENTS:
        return TABLE_SCHEMAS
    schemas: dict[str, pa.Schema] = {}
    for ev in catalogue:
        schemas.setdefault(ev.table, ev.schema)
    return schemas


def _route(batch: _Batch, router: _Router, problems: _Problems) -> np.ndarray:
    """Catalogue event index per raw row; -1 for rows ignored or recorded as problems."""
    if not router.events:
        return np.full(batch.n, -1, dtype=np.int16)
    t0 = batch.topics[0].view(np.uint64)  # (n, 4) native: compared for equality only
    group = router.slots[(t0[:, 0] * router.multiplier) >> router.shift]
    known = group >= 0
    group[~known] = 0
    known &= batch.present[0]
    for j in range(4):
        known &= router.full[:, j][group] == t0[:, j]
    p1, p2, p3 = batch.present[1], batch.present[2], batch.present[3]
    count = 1 + p1.astype(np.int8) + p2 + p3
    count[(~p1 & (p2 | p3)) | (~p2 & p3)] = 5  # a null topic before a present one
    spec = router.route[group, count]
    misfit = known & (spec < 0)
    spec[~known] = -1
    if misfit.any():
        for g in np.unique(group[misfit]).tolist():
            members = [router.events[i] for i in router.members[g]]
            names = "/".join(dict.fromkeys(ev.name for ev in members))
            needs = " or ".join(f"{ev.n_topics} ({ev.signature})" for ev in members)
            in_group = misfit & (group == g)
            for c in np.unique(count[in_group]).tolist():
                have = "a missing topic before a present one" if c == 5 else f"{c} topic(s)"

                def explain(row, have=have, names=names, needs=needs):
                    return (
                        f"{names} log has {have}, the layout needs {needs} "
                        "(same topic0, different indexed layout: e.g. an ERC-721 Transfer)"
                    )

                problems.add(np.flatnonzero(in_group & (count == c)), names, f"topic count: {have}, layout needs {needs}", explain)
    return spec


def _check_lengths(ev: Event, rows: np.ndarray, batch: _Batch, problems: _Problems) -> np.ndarray:
    """Record logs of ``ev`` whose data length does not fit its layout; returns the rows that fit."""
    need = ev.head_size
    got = batch.lengths[rows]
    short = got < need
    long = np.zeros_like(short) if ev.is_dynamic else got > need
    exact = "at least " if ev.is_dynamic else ""
    if short.any():
        problems.add(
            rows[short],
            ev.name,
            f"short data: layout needs {exact}{need} bytes",
            lambda row: f"{ev.name} data is too short: {int(batch.lengths[row])} bytes, {ev.signature} needs {exact}{need}",
        )
    if long.any():
        problems.add(
            rows[long],
            ev.name,
            f"data too long: layout needs exactly {need} bytes",
            lambda row: f"{ev.name} data is {int(batch.lengths[row])} bytes, {ev.signature} needs exactly {need}",
        )
    return rows if not (short.any() or long.any()) else rows[~(short | long)]


def _decode_static(ev: Event, rows: np.ndarray, batch: _Batch, problems: _Problems):
    rows = _check_lengths(ev, rows, batch, problems)
    if len(rows) == 0:
        return None
    return _decode_words(ev, rows, batch, batch.data_block(rows, ev.head_size), problems, strings=None)


def _decode_dynamic(ev: Event, rows: np.ndarray, batch: _Batch, problems: _Problems):
    """Events with a ``string`` (rare): head words vectorised, the string tail per log."""
    rows = _check_lengths(ev, rows, batch, problems)
    m = len(rows)
    if m == 0:
        return None
    starts, sizes = batch.offsets[rows].tolist(), batch.lengths[rows].tolist()
    payloads = [batch.values[s : s + k].tobytes() for s, k in zip(starts, sizes)]
    size = ev.head_size
    head = np.frombuffer(b"".join(p[:size] for p in payloads), dtype=np.uint8).reshape(m, size)
    texts: dict[str, list[str | None]] = {}
    ok = np.ones(m, dtype=bool)
    for j, p in enumerate(ev.non_indexed):
        if not p.is_dynamic:
            continue
        column = []
        for r, payload in enumerate(payloads):
            text, why = _abi_string(payload, 32 * j)
            if why is not None and ok[r]:
                ok[r] = False
                problems.add(
                    rows[r : r + 1],
                    ev.name,
                    f"{ev.name}.{p.name}: {why}",
                    lambda row, p=p, why=why: f"{ev.name}.{p.name} (string): {why}",
                    field=p.name,
                )
            column.append(text)
        texts[p.column] = column
    return _decode_words(ev, rows, batch, head, problems, strings=(texts, ok))


def _abi_string(payload: bytes, head_pos: int) -> tuple[str | None, str | None]:
    """The ABI ``string`` whose offset word sits at ``head_pos`` of ``payload``.

    Returns ``(text, None)`` or ``(None, reason)``. Strict: offset and length inside the
    data, zero padding up to the 32-byte boundary, valid UTF-8.
    """
    offset = int.from_bytes(payload[head_pos : head_pos + 32], "big")
    if offset % 32 or offset + 32 > len(payload):
        return None, f"string offset {offset} is outside the {len(payload)}-byte data"
    length = int.from_bytes(payload[offset : offset + 32], "big")
    start = offset + 32
    end = start + length
    padded = start + -(-length // 32) * 32
    if padded > len(payload):
        return None, f"string of {length} bytes at offset {offset} overruns the {len(payload)}-byte data"
    if any(payload[end:padded]):
        return None, "string padding bytes are not zero"
    try:
        return payload[start:end].decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"string is not valid UTF-8 ({exc.reason} at byte {exc.start})"


def _decode_words(ev: Event, rows: np.ndarray, batch: _Batch, block: np.ndarray, problems: _Problems, strings):
    """Check and convert every parameter of ``ev`` for ``rows``; returns (rows, columns)."""
    m = len(rows)
    checks = []  # (param, ok, build, source word, words for error messages)
    topic_k = 0
    for p in ev.params:
        if p.indexed:
            topic_k += 1
            raw8 = batch.topic_block(topic_k, rows)
            checks.append((p, *_convert(p, raw8), f"topic{topic_k}", raw8))
    for j, p in enumerate(ev.non_indexed):
        if not p.is_dynamic:
            raw8 = block[:, 32 * j : 32 * j + 32]
            checks.append((p, *_convert(p, raw8), f"data word {j}", raw8))

    good = np.ones(m, dtype=bool) if strings is None else strings[1].copy()
    for p, ok, _build, place, raw8 in checks:
        bad = ~ok & good  # report only the first failing field of a log
        if bad.any():
            good &= ok
            bad_rows = rows[bad]
            bad_words = raw8[bad]

            def explain(row, p=p, place=place, bad_rows=bad_rows, bad_words=bad_words):
                word = bad_words[np.searchsorted(bad_rows, row)].tobytes()
                return f"{ev.name}.{p.name} ({p.abi_type}, {place}): {_describe_word(p, word)}"

            problems.add(bad_rows, ev.name, f"{ev.name}.{p.name}: invalid {p.abi_type} word", explain, field=p.name)

    keep = None if good.all() else good
    kept = rows if keep is None else rows[keep]
    if len(kept) == 0:
        return None
    built = {p.column: build(keep) for p, _ok, build, _place, _raw8 in checks}
    columns: dict[str, pa.Array] = {}
    for p in ev.params:
        if p.is_dynamic:
            texts = strings[0][p.column]
            if keep is not None:
                texts = [t for t, k in zip(texts, keep.tolist()) if k]
            columns[p.column] = pa.array(texts, type=pa.string())
        else:
            columns[p.column] = built[p.column]
    for name, type_, value in ev.constants:
        columns[name] = pa.repeat(pa.scalar(value, type=type_), len(kept))
    return kept, columns


def _assemble(schema: pa.Schema, batch: _Batch, pieces) -> pa.Table:
    if not pieces:
        return schema.empty_table()
    if len(pieces) == 1:
        rows, fields = pieces[0]
    else:
        # Several events share this table (collateral toggles): merge back into raw order.
        all_rows = np.concatenate([r for r, _ in pieces])
        order = pa.array(np.argsort(all_rows, kind="stable"))
        rows = all_rows[order.to_numpy()]
        fields = {}
        for name in pieces[0][1]:
            parts = [_single_chunk(f[name]) for _, f in pieces]
            fields[name] = pa.concat_arrays(parts).take(order)
    arrays = {**batch.take_common(rows), **fields}
    return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)


def _undecoded(batch: _Batch, problems: _Problems) -> pa.Table:
    if not problems:
        return UNDECODED_SCHEMA.empty_table()
    rows, codes = problems.merged()
    code_arr = pa.array(codes, type=pa.int32())
    arrays = {
        **batch.take_common(rows),
        "topic0": batch.cols["topic0"].take(pa.array(rows)),
        "event": pa.DictionaryArray.from_arrays(code_arr, pa.array(problems.events, pa.string())).cast(pa.string()),
        "reason": pa.DictionaryArray.from_arrays(code_arr, pa.array(problems.reasons, pa.string())).cast(pa.string()),
    }
    return pa.Table.from_arrays([arrays[f.name] for f in UNDECODED_SCHEMA], schema=UNDECODED_SCHEMA)
