"""``ingest``: a block range from any JSON-RPC node into the warehouse.

Order of work (each step resumable):

1. connect, check the chain id, the range and the node's finality; discover the markets;
2. reorg check: a completed chunk whose recorded end-block hash differs from the node's now is
   invalidated and fetched again;
3. per block chunk (aligned to ``chunk_size``): logs of every market contract, decoded into
   typed tables, block headers, and oracle / adapter / feed reads at the blocks that matter
   (every block with a log, its parent, the range end, and a grid). Decoded tables and reads
   are written first and the raw ``logs`` chunk last: a chunk whose ``logs`` file is in the
   manifest is complete, and a re-run skips it;
4. the start: reserve states, eMode categories and the positions at ``from_block - 1`` of the
   users in scope (``users_scope``): with ``incident``, the holders of the mispriced reserve
   (from its own aToken / debt-token ``Transfer`` logs since ``users_since``) and every user
   of the window's logs (which is why the window comes first); with ``all``, every holder of
   any market token since ``users_since``.

Each stage shows progress on a terminal from its first moment and prints one plain line when
it ends if stderr is not a terminal. The run's cost (requests, calls, logs, reads, bytes,
retries by cause, seconds per stage) is in the summary and the ``runs`` record (``cost``).
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from postmortem.ingest import discovery, snapshots
from postmortem.ingest.calls import multicall_batch_of
from postmortem.ingest.decode import decode_logs, raw_logs_from_rpc
from postmortem.ingest.events import TABLE_SCHEMAS
from postmortem.ingest.ranges import fetch_logs
from postmortem.ingest.cost import cost_record
from postmortem.ingest.progress import _Progress
from postmortem.ingest.rpc import RpcClient
from postmortem.ingest.scope import (
    USER_SCOPES,
    ZERO,
    IngestPlan,
    _incident_users,
    _plan,
    mispriced_reserves,
    scan_tokens,
    users_scope,
    window_users,
)
from postmortem.ingest.units import _lookup, _with_units
from postmortem.ingest import tables as ingest_tables
from postmortem.errors import PostmortemError
from postmortem.incidents import Incident, load_incident
from postmortem.paths import DEFAULT_WAREHOUSE
from postmortem.redact import redact_url
from postmortem.warehouse import CHUNK_DATASETS_KEY, Warehouse

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
DEFAULT_CHUNK = 10_000

# The plan and its users (ingest.scope), the stage progress (ingest.progress), the cost record
# (ingest.cost) and the human-unit columns (ingest.units) are modules of their own; the names
# callers import from here are re-exported.
__all__ = ["DEFAULT_CHUNK", "HOLDER_CHUNK", "IngestPlan", "TRANSFER_TOPIC", "USER_SCOPES", "cost_record", "ingest",
           "mispriced_reserves", "scan_tokens", "users_scope", "window_users"]


def _chunks(a: int, b: int, size: int) -> list[tuple[int, int]]:
    out, start = [], a
    while start <= b:
        end = min(b, (start // size + 1) * size - 1)
        out.append((start, end))
        start = end + 1
    return out


def ingest(
    rpc_url: str,
    *,
    incident: str | Incident | None = None,
    pools: list[str] | None = None,
    from_block: int | None = None,
    to_block: int | None = None,
    warehouse: Path | str = DEFAULT_WAREHOUSE,
    requests_per_second: float | None = None,
    max_concurrency: int = 4,
    chunk_size: int | None = None,
    users_since: int | None = None,
    price_grid: int | None = None,
    allow_unfinalized: bool = False,
    progress: bool | None = None,
    max_batch: int = 100,
    users: str | None = None,
    multicall_batch: int | None = None,
) -> dict:
    """Ingest ``[from_block, to_block]`` of the given markets; returns the run summary.

    ``users``: whose start positions are read, ``"incident"`` (default for an incident that
    names its mispriced asset) or ``"all"`` (see ``users_scope``). ``multicall_batch``: reads
    per Multicall3 ``aggregate3`` call (0 = never use Multicall3). The summary, also recorded
    in ``runs``, carries the run's ``cost`` (see ``cost_record``)."""
    t0 = time.monotonic()
    started = datetime.now(timezone.utc)
    inc = load_incident(incident) if isinstance(incident, str) else incident
    if inc is not None and inc.protocol != "aave-v3":  # another protocol family's own ingest
        from postmortem.ingest.adapters import protocol_ingest

        return protocol_ingest(inc.protocol)(
            rpc_url, incident=inc, from_block=from_block, to_block=to_block, warehouse=warehouse,
            requests_per_second=requests_per_second, max_concurrency=max_concurrency, users_since=users_since,
            allow_unfinalized=allow_unfinalized, progress=progress, max_batch=max_batch, multicall_batch=multicall_batch)
    client = RpcClient(rpc_url, requests_per_second=requests_per_second, max_concurrency=max_concurrency,
                       max_batch=max_batch)
    if multicall_batch is not None:
        client.multicall_batch = int(multicall_batch)
    stages: dict[str, float] = {}
    try:
        connect = _Progress(None, "connect", progress, unit="call")
        try:
            plan = _plan(client, incident=inc, pools=pools, from_block=from_block, to_block=to_block,
                         users_since=users_since, price_grid=price_grid, allow_unfinalized=allow_unfinalized,
                         users=users)
        except BaseException:
            connect.end()
            raise
        connect.close(f"chain {plan.chain_id}, blocks {plan.from_block}..{plan.to_block}, users: {plan.users}; "
                      f"finality: {plan.finality}")
        stages["connect"] = round(time.monotonic() - t0, 3)
        wh = Warehouse(Path(warehouse))
        ingest_tables.register_docs()
        with wh.lock(f"postmortem ingest {plan.from_block}..{plan.to_block}"):
            summary = _run(client, wh, plan, chunk_size or DEFAULT_CHUNK, progress,
                           revisions=(inc.raw.get("revisions", {}) if inc else {}), stages=stages)
            params = {"rpc_url": redact_url(rpc_url), "incident": plan.incident_id, "pools": plan.pools,
                      "from_block": plan.from_block, "to_block": plan.to_block, "chunk_size": chunk_size or DEFAULT_CHUNK,
                      "users_since": plan.users_since, "price_grid": plan.price_grid, "users": plan.users,
                      "finality": plan.finality, "requests_per_second": requests_per_second, "max_concurrency": max_concurrency,
                      "batch_size": max_batch, "multicall_batch": multicall_batch_of(client)}
            summary["rpc"] = client.stats()
            summary["seconds"] = round(time.monotonic() - t0, 3)
            summary["cost"] = cost_record(summary["rpc"], stages, summary["seconds"])
            wh.record_run("ingest", params, summary, run_id=uuid.uuid4().hex[:12], started_at=started,
                          finished_at=datetime.now(timezone.utc))
            # After the record, so that `postmortem sql "select ... from runs"` shows this run too.
            wh.refresh_catalog()
        return {"chain_id": plan.chain_id, "from_block": plan.from_block, "to_block": plan.to_block, **summary}
    finally:
        client.close()


def _heal(wh: Warehouse, chain: int) -> list[str]:
    """Find damaged files (missing, changed, unreadable) and leftovers of a crash; remove them
    and mark their chunk incomplete so this run fetches exactly those chunks again."""
    if not wh.exists():
        return []  # a fresh warehouse: nothing to check yet
    problems = wh.verify(rehash=True)
    if not problems:
        return []
    # Repair withdraws each damaged file with the rest of its chunk (same block range, every
    # dataset, the raw logs marker included), so the chunk loop below fetches all of it again.
    wh.repair(problems)
    return [p.description for p in problems]


_START_DATASETS = {"reserve_states_at_start", "emode_categories", "positions_at_start"}


def _start_complete(wh: Warehouse, chain: int, plan: IngestPlan, start_block: int, chunk_size: int,
                    tokens: list[str]) -> bool:
    """The start snapshot and the holder scan it was built from are all there, built for this
    scope (``users_scope`` in the snapshot's manifest meta; for ``incident`` also over a window
    reaching ``to_block``), so another scope never reuses it (a repaired ``holder_transfers``
    chunk makes the start be built again, resuming the scan)."""
    if not wh.is_chunk_complete(chain, "positions_at_start", start_block, start_block):
        return False
    meta = wh.record_for(chain, "positions_at_start", start_block, start_block).meta or {}
    if meta.get("users_scope", "all") != plan.users:
        return False
    if plan.users == "incident" and int(meta.get("to_block", -1)) < plan.to_block:
        return False  # the window's users were taken from a shorter window
    since = plan.users_since
    if start_block < since:
        return True
    return all(_holder_chunk_ok(wh, chain, s, e, tokens)
               for s, e in _chunks(since, start_block, _holder_chunk_size(chunk_size)))


def _holder_chunk_ok(wh: Warehouse, chain: int, s: int, e: int, tokens: list[str]) -> bool:
    """The holder-scan chunk is there and scanned (at least) these tokens; a chunk without a
    token list predates scopes and scanned every market token."""
    if not wh.is_complete(chain, "holder_transfers", s, e):
        return False
    scanned = (wh.record_for(chain, "holder_transfers", s, e).meta or {}).get("tokens")
    return scanned is None or set(tokens) <= set(scanned)


# The holder scan reads one or a few tokens' Transfer logs over years of blocks: each chunk is
# first asked whole, so a node (or a provider's "any range with at most 10,000 logs" rule)
# answers sparse history in one request; a refusal splits it as the provider suggests. Its
# request count then follows the logs, not the length of the chain's history.
HOLDER_CHUNK = 1_000_000


def _holder_chunk_size(chunk_size: int) -> int:
    return max(chunk_size, HOLDER_CHUNK)


def _run(client: RpcClient, wh: Warehouse, plan: IngestPlan, chunk_size: int, progress, revisions,
         stages: dict[str, float] | None = None) -> dict:
    stages = stages if stages is not None else {}
    chain = plan.chain_id
    a, b = plan.from_block, plan.to_block
    t = time.monotonic()
    repaired = _heal(wh, chain)
    for note in repaired:
        print(f"postmortem: damaged warehouse file: {note} (this run re-fetches that chunk)", file=sys.stderr)
    stages["verify"] = round(time.monotonic() - t, 3)
    t = time.monotonic()
    disc = _Progress(None, "discovery", progress, unit="market")
    try:
        markets = discovery.discover(client, plan.pools, b, revisions)
        _write(wh, chain, "markets", b, b, discovery.markets_table(markets, b))
        _write(wh, chain, "reserves", b, b, discovery.reserves_table(markets))
        tokens = scan_tokens(markets, plan)
    except BaseException:
        disc.end()
        raise
    disc.close(f"{len(markets)} markets, {sum(len(m.reserves) for m in markets)} reserves")
    stages["discovery"] = round(time.monotonic() - t, 3)
    addresses = discovery.log_addresses(markets)
    token_decimals = {}
    token_asset = {}
    for m in markets:
        for r in m.reserves:
            for tk in (r["asset"], r["a_token"], r["variable_debt_token"]):
                token_decimals[tk] = r["decimals"]
            token_asset[r["a_token"]] = r["asset"]
            token_asset[r["variable_debt_token"]] = r["asset"]

    counts = {"chunks": 0, "chunks_skipped": 0, "chunks_refetched_reorg": 0, "logs": 0, "logs_fetched": 0,
              "blocks": 0, "reads": 0,
              "damaged_files_repaired": len(repaired), "users_scope": plan.users}

    # -- reorg check on completed chunks (one batch of headers) ----------------------------
    t = time.monotonic()
    chunks = _chunks(a, b, chunk_size)
    complete = []
    logs_in_done: dict[tuple[int, int], int] = {}
    for s, e in chunks:
        rec = wh.record_for(chain, "logs", s, e)
        if rec is not None and wh.is_chunk_complete(chain, "logs", s, e):
            complete.append((s, e, (rec.meta or {}).get("end_block_hash")))
            logs_in_done[(s, e)] = rec.rows
    headers = client.map_batched([("eth_getBlockByNumber", [hex(e), False]) for _, e, _ in complete])
    done = []
    for (s, e, recorded), now in zip(complete, headers):
        if recorded and now and now["hash"] != recorded:
            for ds in _chunk_datasets():
                wh.invalidate(chain, ds, s, e, reason=f"reorg: block {e} hash changed")
            counts["chunks_refetched_reorg"] += 1
        else:
            done.append((s, e))

    # -- the window, chunk by chunk -----------------------------------------------------------
    bar = _Progress(b - a + 1, "window", progress)
    try:
        for s, e in chunks:
            if (s, e) in done:
                counts["chunks_skipped"] += 1
                counts["logs"] += logs_in_done[(s, e)]  # the summary counts every log of the range
                bar.update(e - s + 1)
                continue
            _supersede(wh, chain, s, e)
            n_logs, n_blocks, n_reads = _ingest_chunk(client, wh, chain, markets, addresses, s, e, a, b,
                                                      plan.price_grid, token_decimals, token_asset)
            counts["chunks"] += 1
            counts["logs"] += n_logs
            counts["logs_fetched"] += n_logs
            counts["blocks"] += n_blocks
            counts["reads"] += n_reads
            bar.update(e - s + 1, logs=counts["logs"])
    except BaseException:
        bar.end()
        raise
    bar.close(f"blocks {a}..{b}, {counts['logs']} logs, {counts['chunks']} chunks fetched, "
              f"{counts['chunks_skipped']} already complete")
    stages["window"] = round(time.monotonic() - t, 3)

    # -- the start (after the window: the incident scope needs the window's users) -------------
    start_block = a - 1
    if not _start_complete(wh, chain, plan, start_block, chunk_size, tokens):
        t = time.monotonic()
        header = client.call("eth_getBlockByNumber", [hex(start_block), False])
        ts = int(header["timestamp"], 16)
        _write(wh, chain, "reserve_states_at_start", start_block, start_block,
               snapshots.reserve_states(client, markets, start_block, ts))
        _write(wh, chain, "emode_categories", start_block, start_block,
               snapshots.emode_categories(client, markets, start_block))
        stages["start_state"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        holders = _holders(client, wh, chain, markets, plan.users_since, start_block, chunk_size, progress, tokens)
        stages["holders"] = round(time.monotonic() - t, 3)
        t = time.monotonic()
        pos_bar = _Progress(None, "positions", progress, unit="user")
        try:
            if plan.users == "incident":
                wanted = _incident_users(wh, chain, markets, plan, holders, a, b)
                table = snapshots.scoped_positions(client, markets, wanted, start_block)
                counts["scope_users"] = len({u for users in wanted.values() for u in users})
            else:
                table = snapshots.positions(client, markets, holders, start_block)
                counts["scope_users"] = len({u for users in holders.values() for u in users})
        except BaseException:
            pos_bar.end()
            raise
        # Written last, listing the other start datasets: the start is complete only with all of them.
        _write(wh, chain, "positions_at_start", start_block, start_block, table,
               {CHUNK_DATASETS_KEY: sorted(_START_DATASETS - {"positions_at_start"}), "users_scope": plan.users,
                "to_block": b, "holder_tokens": tokens})
        counts["positions_at_start"] = table.num_rows
        pos_bar.close(f"{counts['scope_users']} users ({plan.users} scope), {table.num_rows} positions at block "
                      f"{start_block}")
        stages["positions"] = round(time.monotonic() - t, 3)
    return counts


def _chunk_datasets() -> list[str]:
    return sorted(set(TABLE_SCHEMAS) | {"logs", "blocks", "oracle_prices", "capo_states", "feed_answers"})


def _supersede(wh: Warehouse, chain: int, s: int, e: int) -> None:
    """A chunk written before with other bounds (e.g. a partial last chunk of an earlier,
    shorter range) is replaced by this one."""
    for ds in _chunk_datasets():
        for rec in wh.completed_chunks(chain, ds):
            if rec.start <= e and s <= rec.end and (rec.start, rec.end) != (s, e):
                wh.invalidate(chain, ds, rec.start, rec.end, reason=f"superseded by chunk {s}..{e}")


def _write(wh: Warehouse, chain: int, dataset: str, s: int, e: int, table: pa.Table, meta: dict | None = None) -> None:
    wh.write_chunk(chain, dataset, s, e, table, meta or {})


def _holders(client, wh, chain, markets, since: int, until: int, chunk_size: int, progress,
             tokens: list[str] | None = None) -> dict[str, set[str]]:
    """Users who held each of ``tokens`` (default: every aToken / debt token) at some point in
    ``[since, until]``, from the tokens' ``Transfer`` logs (kept as the ``holder_transfers``
    dataset, resumable; each chunk's meta lists the tokens it scanned, so a scan of fewer tokens
    is never taken for a scan of more)."""
    if tokens is None:
        tokens = sorted({t for m in markets for r in m.reserves for t in (r["a_token"], r["variable_debt_token"])})
    holders: dict[str, set[str]] = {t: set() for t in tokens}
    if until < since:
        return holders
    size = _holder_chunk_size(chunk_size)
    bar = _Progress(until - since + 1, "holders", progress)
    n_logs = 0
    try:
        for s, e in _chunks(since, until, size):
            if not _holder_chunk_ok(wh, chain, s, e, tokens):
                _supersede_one(wh, chain, "holder_transfers", s, e)
                wh.invalidate(chain, "holder_transfers", s, e, reason="holder scan of other tokens")
                got = fetch_logs(client, addresses=tokens, topics=[TRANSFER_TOPIC], from_block=s, to_block=e,
                                 initial_width=e - s + 1, max_width=e - s + 1)
                raw = raw_logs_from_rpc([lg for r in got for lg in r.logs])
                dec = decode_logs(raw, strict=False)["transfers"]
                table = dec.select(["block_number", "log_index", "address", "from_address", "to_address"])
                _write(wh, chain, "holder_transfers", s, e, table, {"tokens": tokens})
                n_logs += table.num_rows
            bar.update(e - s + 1)
    except BaseException:
        bar.end()
        raise
    import duckdb

    files = [str(wh.root / r.path) for r in wh.completed_chunks(chain, "holder_transfers")
             if r.start >= since and r.end <= until]
    if files:
        con = duckdb.connect()
        rows = con.execute(
            "select distinct address, u from (select address, from_address u from read_parquet(?) "
            "union all select address, to_address from read_parquet(?)) where u <> ? and list_contains(?, address)",
            [files, files, ZERO, tokens],
        ).fetchall()
        for token, user in rows:
            holders.setdefault(token, set()).add(user)
    bar.close(f"blocks {since}..{until}, {len(tokens)} tokens, {n_logs} Transfer logs fetched, "
              f"{len({u for us in holders.values() for u in us})} holders")
    return holders


def _supersede_one(wh, chain, ds, s, e):
    for rec in wh.completed_chunks(chain, ds):
        if rec.start <= e and s <= rec.end and (rec.start, rec.end) != (s, e):
            wh.invalidate(chain, ds, rec.start, rec.end, reason=f"superseded by chunk {s}..{e}")


def _ingest_chunk(client, wh, chain, markets, addresses, s, e, a, b, grid, token_decimals, token_asset):
    got = fetch_logs(client, addresses=addresses, topics=None, from_block=s, to_block=e)
    logs = [lg for r in got for lg in r.logs]
    raw = raw_logs_from_rpc(logs)
    del logs, got
    log_blocks = pc.unique(raw.column("block_number")).to_pylist()
    # Blocks whose state replay needs: every block with a log and its parent, the chunk's
    # start parent, the range end, and the grid.
    read_blocks = set(log_blocks) | {x - 1 for x in log_blocks} | {s - 1}
    if e == b:
        read_blocks.add(b)
    if grid:
        read_blocks |= set(range(((s + grid - 1) // grid) * grid, e + 1, grid))
    read_blocks = sorted(x for x in read_blocks if s - 1 <= x <= e and x >= 0)
    header_blocks = sorted(set(log_blocks) | set(read_blocks) | {s, e})
    # The node answers the headers and the state reads while this thread decodes the logs: the
    # two overlap instead of taking turns (the client's own limit on requests in flight holds).
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="chunk")
    try:
        headers_job = pool.submit(client.map_batched, [("eth_getBlockByNumber", [hex(n), False]) for n in header_blocks])
        reads_job = pool.submit(snapshots.price_reads, client, markets, read_blocks)
        decoded = {}
        for name, table in decode_logs(raw, strict=False).items():
            if table.num_rows == 0:
                continue  # an empty decoded table is not written, and not listed below
            if name in ("transfers", "token_mints", "token_burns", "balance_transfers"):
                table = table.append_column("asset", _lookup(table.column("address"), token_asset, pa.string()))
            decoded[name] = _with_units(name, table, token_decimals)
        headers = headers_job.result()
        reads = reads_job.result()
    except (KeyboardInterrupt, SystemExit):
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: do not wait for the answers in flight
        raise
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # the other job ends before the client is closed
        raise
    pool.shutdown(wait=True)
    blocks = pa.table({
        "block_number": pa.array([int(h["number"], 16) for h in headers], pa.int64()),
        "block_hash": pa.array([h["hash"] for h in headers], pa.string()),
        "parent_hash": pa.array([h["parentHash"] for h in headers], pa.string()),
        "timestamp": pa.array([int(h["timestamp"], 16) for h in headers], pa.int64()),
    })
    hash_of = dict(zip(blocks.column("block_number").to_pylist(), blocks.column("block_hash").to_pylist()))
    # Logs must belong to the blocks we just read: a reorg in between is refetched next run.
    if raw.num_rows:
        idx = pc.index_in(raw.column("block_number"), value_set=blocks.column("block_number"))
        expected = pc.take(blocks.column("block_hash"), idx)
        bad = pc.invert(pc.fill_null(pc.equal(expected, raw.column("block_hash")), False))
        if pc.any(bad).as_py():
            first = pc.filter(raw.column("block_number"), bad)[0].as_py()
            raise PostmortemError(
                f"block {first} changed while it was being read (a reorg); run the same ingest again to fetch it anew"
            )
    # Decoded tables and reads first, the raw logs chunk last: it marks the chunk complete.
    written = []
    for name, table in decoded.items():
        _write(wh, chain, name, s, e, table)
        written.append(name)
    for name, table in reads.items():
        _write(wh, chain, name, s, e, table)
        written.append(name)
    _write(wh, chain, "blocks", s, e, blocks)
    written.append("blocks")
    # The logs file lists what the chunk wrote: the chunk is complete only while all of it is there.
    meta = {"start_block_hash": hash_of.get(s), "end_block_hash": hash_of.get(e), "logs": raw.num_rows,
            CHUNK_DATASETS_KEY: sorted(written)}
    _write(wh, chain, "logs", s, e, raw, meta)
    n_reads = sum(t.num_rows for t in reads.values())
    return raw.num_rows, blocks.num_rows, n_reads
