"""``ingest``: a block range from any JSON-RPC node into the warehouse.

Order of work (each step resumable):

1. connect, check the chain id, the range and the node's finality; discover the markets;
2. the start: reserve states, eMode categories and every position at ``from_block - 1``
   (holders found from aToken / debt-token ``Transfer`` logs since ``users_since``);
3. per block chunk (aligned to ``chunk_size``): logs of every market contract, decoded into
   typed tables, block headers, and oracle / adapter / feed reads at the blocks that matter
   (every block with a log, its parent, the range end, and a grid). Decoded tables and reads
   are written first and the raw ``logs`` chunk last: a chunk whose ``logs`` file is in the
   manifest is complete, and a re-run skips it;
4. reorg check: a completed chunk whose recorded end-block hash differs from the node's now is
   invalidated and fetched again.
"""

from __future__ import annotations

import sys
import time
import uuid
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from postmortem.ingest import discovery, snapshots
from postmortem.ingest.decode import decode_logs, raw_logs_from_rpc
from postmortem.ingest.events import TABLE_SCHEMAS
from postmortem.ingest.ranges import fetch_logs
from postmortem.ingest.rpc import RpcClient, RpcError
from postmortem.ingest import tables as ingest_tables
from postmortem.errors import PostmortemError
from postmortem.incidents import Incident, load_incident
from postmortem.paths import DEFAULT_WAREHOUSE
from postmortem.redact import redact_url
from postmortem.warehouse import CHUNK_DATASETS_KEY, Warehouse

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
DEFAULT_CHUNK = 10_000
ZERO = "0x" + "0" * 40


@dataclass
class IngestPlan:
    chain_id: int
    pools: dict[str, str]
    from_block: int
    to_block: int
    users_since: int
    price_grid: int
    incident_id: str | None
    revisions: dict[str, str]


def _plan(client: RpcClient, *, incident: Incident | None, pools: list[str] | None, from_block, to_block,
          users_since, price_grid, allow_unfinalized: bool) -> IngestPlan:
    # Everything that can be checked without the node is checked first.
    if incident is not None:
        pool_map = dict(incident.pools)
        from_block = incident.from_block if from_block is None else from_block
        to_block = incident.to_block if to_block is None else to_block
        users_since = incident.users_since if users_since is None else users_since
        price_grid = incident.price_grid if price_grid is None else price_grid
        if incident.finality == "latest":
            allow_unfinalized = True
    else:
        if not pools:
            raise PostmortemError("say what to ingest: --incident ID or at least one --pool ADDRESS")
        pool_map = {}
        for p in pools:
            if not (isinstance(p, str) and p.startswith("0x") and len(p) == 42):
                raise PostmortemError(f"--pool {p!r} is not an address; give a 0x-prefixed 40-hex-digit Pool address")
            pool_map[f"pool-{p[2:8].lower()}"] = p.lower()
        price_grid = price_grid or 0
    if from_block is None or to_block is None:
        raise PostmortemError("give the block range with --from-block and --to-block")
    if from_block < 1 or to_block < 1:
        raise PostmortemError("block numbers start at 1; give --from-block and --to-block of 1 or more")
    if from_block > to_block:
        raise PostmortemError(f"--from-block {from_block} is after --to-block {to_block}; swap them")

    chain_id = int(client.call("eth_chainId", []), 16)
    if incident is not None and chain_id != incident.chain_id:
        raise PostmortemError(
            f"the RPC URL serves chain {chain_id} but incident {incident.id} is on chain {incident.chain_id}; "
            "point --rpc-url at a node of that chain"
        )
    head = int(client.call("eth_blockNumber", []), 16)
    if to_block > head:
        raise PostmortemError(f"--to-block {to_block} is past the node's latest block {head}; lower it")
    if not allow_unfinalized:
        try:
            fin = client.call("eth_getBlockByNumber", ["finalized", False])
            finalized = int(fin["number"], 16) if fin else head
        except RpcError:
            finalized = head  # a node without the tag: nothing to respect
        if to_block > finalized:
            raise PostmortemError(
                f"--to-block {to_block} is past the node's finalized block {finalized}; lower it, or pass "
                "--allow-unfinalized to ingest blocks that a reorg may still replace"
            )
    return IngestPlan(chain_id, pool_map, int(from_block), int(to_block), int(users_since or 0),
                      int(price_grid or 0), incident.id if incident else None, {})


def _chunks(a: int, b: int, size: int) -> list[tuple[int, int]]:
    out, start = [], a
    while start <= b:
        end = min(b, (start // size + 1) * size - 1)
        out.append((start, end))
        start = end + 1
    return out


class _Progress:
    def __init__(self, total: int, desc: str, enabled: bool | None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.bar = None
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="blk", unit_scale=True, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int, **post) -> None:
        if self.bar:
            self.bar.update(n)
            if post:
                self.bar.set_postfix(post, refresh=False)

    def close(self) -> None:
        if self.bar:
            self.bar.close()


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
) -> dict:
    """Ingest ``[from_block, to_block]`` of the given markets; returns the run summary."""
    t0 = time.monotonic()
    started = datetime.now(timezone.utc)
    inc = load_incident(incident) if isinstance(incident, str) else incident
    client = RpcClient(rpc_url, requests_per_second=requests_per_second, max_concurrency=max_concurrency,
                       max_batch=max_batch)
    try:
        plan = _plan(client, incident=inc, pools=pools, from_block=from_block, to_block=to_block,
                     users_since=users_since, price_grid=price_grid, allow_unfinalized=allow_unfinalized)
        wh = Warehouse(Path(warehouse))
        ingest_tables.register_docs()
        with wh.lock(f"postmortem ingest {plan.from_block}..{plan.to_block}"):
            summary = _run(client, wh, plan, chunk_size or DEFAULT_CHUNK, progress,
                           revisions=(inc.raw.get("revisions", {}) if inc else {}))
            wh.refresh_catalog()
            params = {"rpc_url": redact_url(rpc_url), "incident": plan.incident_id, "pools": plan.pools,
                      "from_block": plan.from_block, "to_block": plan.to_block, "chunk_size": chunk_size or DEFAULT_CHUNK,
                      "users_since": plan.users_since, "price_grid": plan.price_grid,
                      "requests_per_second": requests_per_second, "max_concurrency": max_concurrency}
            summary["rpc"] = client.stats()
            summary["seconds"] = round(time.monotonic() - t0, 3)
            wh.record_run("ingest", params, summary, run_id=uuid.uuid4().hex[:12], started_at=started,
                          finished_at=datetime.now(timezone.utc))
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


def _start_complete(wh: Warehouse, chain: int, since: int, start_block: int, chunk_size: int) -> bool:
    """The start snapshot and the holder scan it was built from are all there (a repaired
    ``holder_transfers`` chunk makes the start be built again, resuming the scan)."""
    if not wh.is_chunk_complete(chain, "positions_at_start", start_block, start_block):
        return False
    if start_block < since:
        return True
    return all(wh.is_complete(chain, "holder_transfers", s, e)
               for s, e in _chunks(since, start_block, _holder_chunk_size(chunk_size)))


def _holder_chunk_size(chunk_size: int) -> int:
    return max(chunk_size, 50_000)


def _run(client: RpcClient, wh: Warehouse, plan: IngestPlan, chunk_size: int, progress, revisions) -> dict:
    chain = plan.chain_id
    a, b = plan.from_block, plan.to_block
    repaired = _heal(wh, chain)
    for note in repaired:
        print(f"postmortem: damaged warehouse file: {note} (this run re-fetches that chunk)", file=sys.stderr)
    markets = discovery.discover(client, plan.pools, b, revisions)
    _write(wh, chain, "markets", b, b, discovery.markets_table(markets, b))
    _write(wh, chain, "reserves", b, b, discovery.reserves_table(markets))
    addresses = discovery.log_addresses(markets)
    token_decimals = {}
    token_asset = {}
    for m in markets:
        for r in m.reserves:
            for t in (r["asset"], r["a_token"], r["variable_debt_token"]):
                token_decimals[t] = r["decimals"]
            token_asset[r["a_token"]] = r["asset"]
            token_asset[r["variable_debt_token"]] = r["asset"]

    counts = {"chunks": 0, "chunks_skipped": 0, "chunks_refetched_reorg": 0, "logs": 0, "logs_fetched": 0,
              "blocks": 0, "reads": 0,
              "damaged_files_repaired": len(repaired)}
    # -- the start --------------------------------------------------------------------------
    start_block = a - 1
    if not _start_complete(wh, chain, plan.users_since, start_block, chunk_size):
        header = client.call("eth_getBlockByNumber", [hex(start_block), False])
        ts = int(header["timestamp"], 16)
        _write(wh, chain, "reserve_states_at_start", start_block, start_block,
               snapshots.reserve_states(client, markets, start_block, ts))
        _write(wh, chain, "emode_categories", start_block, start_block,
               snapshots.emode_categories(client, markets, start_block))
        holders = _holders(client, wh, chain, markets, plan.users_since, start_block, chunk_size, progress)
        # Written last, listing the other start datasets: the start is complete only with all of them.
        _write(wh, chain, "positions_at_start", start_block, start_block,
               snapshots.positions(client, markets, holders, start_block),
               {CHUNK_DATASETS_KEY: sorted(_START_DATASETS - {"positions_at_start"})})

    # -- reorg check on completed chunks (one batch of headers) ----------------------------
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

    bar = _Progress(b - a + 1, "ingest", progress)
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
    finally:
        bar.close()
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


def _holders(client, wh, chain, markets, since: int, until: int, chunk_size: int, progress) -> dict[str, set[str]]:
    """Users who held each aToken / debt token at some point in ``[since, until]``, from the
    tokens' ``Transfer`` logs (kept as the ``holder_transfers`` dataset, resumable)."""
    tokens = sorted({t for m in markets for r in m.reserves for t in (r["a_token"], r["variable_debt_token"])})
    holders: dict[str, set[str]] = {t: set() for t in tokens}
    if until < since:
        return holders
    size = _holder_chunk_size(chunk_size)
    bar = _Progress(until - since + 1, "holders", progress)
    try:
        for s, e in _chunks(since, until, size):
            if not wh.is_complete(chain, "holder_transfers", s, e):
                _supersede_one(wh, chain, "holder_transfers", s, e)
                got = fetch_logs(client, addresses=tokens, topics=[TRANSFER_TOPIC], from_block=s, to_block=e)
                raw = raw_logs_from_rpc([lg for r in got for lg in r.logs])
                dec = decode_logs(raw, strict=False)["transfers"]
                table = dec.select(["block_number", "log_index", "address", "from_address", "to_address"])
                _write(wh, chain, "holder_transfers", s, e, table)
            bar.update(e - s + 1)
    finally:
        bar.close()
    import duckdb

    files = [str(wh.root / r.path) for r in wh.completed_chunks(chain, "holder_transfers")
             if r.start >= since and r.end <= until]
    if files:
        con = duckdb.connect()
        rows = con.execute(
            "select distinct address, u from (select address, from_address u from read_parquet(?) "
            "union all select address, to_address from read_parquet(?)) where u <> ?",
            [files, files, ZERO],
        ).fetchall()
        for token, user in rows:
            holders.setdefault(token, set()).add(user)
    return holders


def _supersede_one(wh, chain, ds, s, e):
    for rec in wh.completed_chunks(chain, ds):
        if rec.start <= e and s <= rec.end and (rec.start, rec.end) != (s, e):
            wh.invalidate(chain, ds, rec.start, rec.end, reason=f"superseded by chunk {s}..{e}")


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


def _ingest_chunk(client, wh, chain, markets, addresses, s, e, a, b, grid, token_decimals, token_asset):
    got = fetch_logs(client, addresses=addresses, topics=None, from_block=s, to_block=e)
    logs = [lg for r in got for lg in r.logs]
    raw = raw_logs_from_rpc(logs)
    decoded = decode_logs(raw, strict=False)
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
    headers = client.map_batched([("eth_getBlockByNumber", [hex(n), False]) for n in header_blocks])
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
    reads = snapshots.price_reads(client, markets, read_blocks)
    # Decoded tables and reads first, the raw logs chunk last: it marks the chunk complete.
    written = []
    for name, table in decoded.items():
        if table.num_rows == 0:
            continue  # an empty decoded table is not written, and not listed below
        if name in ("transfers", "token_mints", "token_burns", "balance_transfers"):
            table = table.append_column("asset", _lookup(table.column("address"), token_asset, pa.string()))
        _write(wh, chain, name, s, e, _with_units(name, table, token_decimals))
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
