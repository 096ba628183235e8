"""``ingest`` for the Compound v2 lineage (Compound, Moonwell, Venus): a block range of one
Comptroller's markets into the warehouse.

Order of work:

1. connect: the chain id, the range, the node's finality (the same checks as Aave's ingest,
   :func:`postmortem.ingest.scope._plan`);
2. discovery at ``from_block - 1``: the Comptroller's markets (``getAllMarkets``), each market's
   symbol, decimals, underlying, factors and state, the Comptroller's close factor, incentive and
   oracle (``compound_markets``);
3. the window's logs of the Comptroller, every market and the oracle, kept raw
   (``compound_logs``) and decoded (``compound_events``, :mod:`postmortem.ingest.compound_events`),
   with each block's timestamp;
4. the users: every account named in the window's events, plus (when ``users_since`` is before the
   window) every account named in the markets' logs since then; their positions at
   ``from_block - 1`` (``getAssetsIn``, ``getAccountSnapshot`` per market) in
   ``compound_positions_at_start``, with the stored borrow principal and interest index where the
   logs since ``users_since`` show them (the last ``accountBorrows`` and the borrow index of that
   moment, kept only when they reproduce the borrow balance read);
5. reads at the end of every block with an event and of its parent block, and of ``to_block``:
   each market's oracle price, exchange rate, cash, borrows, reserves, supply and borrow index
   (``compound_market_reads``).

Everything is written as one chunk ``[from_block, to_block]`` per table, the decoded tables
first and ``compound_logs`` last: a re-run finds the chunk complete and skips the work.
All reads go through :func:`postmortem.ingest.calls.run_reads` (Multicall3 where deployed).
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from postmortem.errors import PostmortemError
from postmortem.incidents import Incident
from postmortem.ingest.calls import Read, multicall_batch_of, run_reads
from postmortem.ingest.compound_events import ADDRESS_COLUMNS, AMOUNT_COLUMNS, decode_log
from postmortem.ingest.cost import cost_record
from postmortem.ingest.progress import _Progress
from postmortem.ingest.ranges import fetch_logs
from postmortem.ingest.raw_logs import raw_logs_from_rpc
from postmortem.ingest.rpc import RpcClient
from postmortem.ingest.scope import _plan
from postmortem.redact import redact_url
from postmortem.schema_docs import register_compound_tables
from postmortem.warehouse import CHUNK_DATASETS_KEY, Warehouse

DEC = pa.decimal128(38, 0)
ZERO = "0x" + "0" * 40
LOGS_DATASET = "compound_logs"
DATASETS = ("compound_markets", "compound_events", "compound_positions_at_start", "compound_market_reads")
_MAX38 = 10**38 - 1


def _dec(value: int | None, what: str):
    if value is None:
        return None
    if not 0 <= value <= _MAX38:
        raise PostmortemError(f"{what} = {value} does not fit DECIMAL(38,0); this ingest cannot store it exactly")
    return value


def ingest_compound(rpc_url: str, *, incident: Incident, from_block: int | None = None, to_block: int | None = None,
                    warehouse: Path | str, requests_per_second: float | None = None, max_concurrency: int = 4,
                    allow_unfinalized: bool = False, progress: bool | None = None, max_batch: int = 100,
                    users_since: int | None = None, multicall_batch: int | None = None, **_ignored) -> dict:
    """Ingest a Compound v2 lineage incident's window; returns the run summary (also in ``runs``)."""
    t0 = time.monotonic()
    started = datetime.now(timezone.utc)
    client = RpcClient(rpc_url, requests_per_second=requests_per_second, max_concurrency=max_concurrency,
                       max_batch=max_batch)
    if multicall_batch is not None:
        client.multicall_batch = int(multicall_batch)
    stages: dict[str, float] = {}
    try:
        bar = _Progress(None, "connect", progress, unit="call")
        try:
            plan = _plan(client, incident=incident, pools=None, from_block=from_block, to_block=to_block,
                         users_since=users_since, price_grid=0, allow_unfinalized=allow_unfinalized, users="all")
        except BaseException:
            bar.end()
            raise
        bar.close(f"chain {plan.chain_id}, blocks {plan.from_block}..{plan.to_block}")
        stages["connect"] = round(time.monotonic() - t0, 3)
        a, b, chain = plan.from_block, plan.to_block, plan.chain_id
        since = incident.users_since if users_since is None else int(users_since)
        since = min(since, a) if since else a
        register_compound_tables()
        wh = Warehouse(Path(warehouse))
        with wh.lock(f"postmortem ingest {incident.id} {a}..{b}"):
            if wh.exists() and wh.is_chunk_complete(chain, LOGS_DATASET, a, b):
                summary = {"skipped": "complete", "from_block": a, "to_block": b}
            else:
                summary = _run(client, wh, incident, chain, a, b, since, progress, stages)
            params = {"rpc_url": redact_url(rpc_url), "incident": incident.id, "protocol": incident.protocol,
                      "variant": incident.variant, "comptroller": incident.comptroller, "from_block": a,
                      "to_block": b, "users_since": since, "requests_per_second": requests_per_second,
                      "multicall_batch": multicall_batch_of(client)}
            summary["rpc"] = client.stats()
            summary["seconds"] = round(time.monotonic() - t0, 3)
            summary["cost"] = cost_record(summary["rpc"], stages, summary["seconds"])
            wh.record_run("ingest", params, summary, run_id=uuid.uuid4().hex[:12], started_at=started,
                          finished_at=datetime.now(timezone.utc))
            wh.refresh_catalog()
        return {"chain_id": chain, "from_block": a, "to_block": b, **summary}
    finally:
        client.close()


# -- discovery --------------------------------------------------------------------------------------------


def discover(client, incident: Incident, block: int) -> tuple[dict, list[dict]]:
    """(the Comptroller's parameters, its markets with their factors and state) at ``block``."""
    c = incident.comptroller
    venus = incident.variant == "venus-isolated"
    got = run_reads(client, [
        Read(c, "getAllMarkets()", out=("address[]",), block=block),
        Read(c, "closeFactorMantissa()", block=block),
        Read(c, "liquidationIncentiveMantissa()", block=block),
        Read(c, "oracle()", out=("address",), block=block),
        Read(c, "minLiquidatableCollateral()", block=block),
    ])
    markets = [m.lower() for m in (got[0] or [])]
    named = {v["vtoken"] for v in incident.ctokens.values()}
    if not markets:
        markets = sorted(named)
    if got[1] is None or got[3] is None or not markets:
        raise PostmortemError(f"{c} answers no Comptroller calls at block {block}; check the incident's comptroller "
                              "address and that the node is an archive node for that block")
    missing = named - set(markets)
    if missing:
        raise PostmortemError(f"the Comptroller does not list {', '.join(sorted(missing))} at block {block}; fix the "
                              "incident's [markets] or its block range")
    params = {"comptroller": c, "close_factor": int(got[1]), "liquidation_incentive": int(got[2] or 0),
              "oracle": got[3].lower(), "min_liquidatable_collateral": int(got[4] or 0) if venus else 0}
    sigs = [("symbol()", ("string",)), ("decimals()", ("uint8",)), ("underlying()", ("address",)),
            ("exchangeRateStored()", ("uint256",)), ("getCash()", ("uint256",)), ("totalBorrows()", ("uint256",)),
            ("totalReserves()", ("uint256",)), ("totalSupply()", ("uint256",)), ("borrowIndex()", ("uint256",)),
            ("reserveFactorMantissa()", ("uint256",)), ("protocolSeizeShareMantissa()", ("uint256",)),
            ("badDebt()", ("uint256",)), ("accrualBlockNumber()", ("uint256",))]
    reads = []
    for m in markets:
        reads += [Read(m, s, out=o, block=block) for s, o in sigs]
        reads.append(Read(c, "markets(address)", (m,), out=("bool", "uint256", "uint256") if venus else ("bool", "uint256"),
                          block=block))
        reads.append(Read(params["oracle"], "getUnderlyingPrice(address)", (m,), block=block))
    vals = run_reads(client, reads)
    per = len(sigs) + 2
    by_symbol = {v["vtoken"]: k for k, v in incident.ctokens.items()}
    out = []
    for i, m in enumerate(markets):
        r = vals[i * per:(i + 1) * per]
        underlying = (r[2] or ZERO).lower()
        udec = 18
        if underlying != ZERO:
            udec = run_reads(client, [Read(underlying, "decimals()", out=("uint8",), block=block)])[0]
            udec = 18 if udec is None else int(udec)
        mk = r[len(sigs)] or (False, 0, 0)
        if r[3] is None:
            raise PostmortemError(f"the market {m} answers no cToken calls at block {block}; is the node an archive "
                                  "node for that block?")
        out.append({
            "market": m, "symbol": by_symbol.get(m) or r[0] or m, "ctoken_symbol": r[0] or "", "vtoken_decimals": int(r[1] or 8),
            "underlying": underlying, "decimals": udec, "is_listed": bool(mk[0]),
            "collateral_factor": int(mk[1]), "liquidation_threshold": int(mk[2]) if venus and len(mk) > 2 else None,
            "exchange_rate_stored": int(r[3]), "cash": int(r[4]), "total_borrows": int(r[5]),
            "total_reserves": int(r[6]), "total_supply": int(r[7]), "borrow_index": int(r[8]),
            "reserve_factor": int(r[9] or 0), "protocol_seize_share": int(r[10] or 0), "bad_debt": int(r[11] or 0),
            "accrual_block_number": int(r[12] or 0), "price": int(r[len(sigs) + 1] or 0),
        })
    return params, out


# -- the run ----------------------------------------------------------------------------------------------


def _run(client, wh: Warehouse, inc: Incident, chain: int, a: int, b: int, since: int, progress, stages) -> dict:
    t = time.monotonic()
    start = a - 1
    params, markets = discover(client, inc, start)
    addrs = [inc.comptroller] + [m["market"] for m in markets]
    stages["discovery"] = round(time.monotonic() - t, 3)

    t = time.monotonic()
    bar = _Progress(b - a + 1, "window", progress, unit="block")
    ranges = fetch_logs(client, addresses=addrs + [params["oracle"]], topics=None, from_block=a, to_block=b,
                        on_range=lambda r: bar.update(r.to_block - r.from_block + 1))
    bar.close(f"blocks {a}..{b}, {sum(len(r.logs) for r in ranges)} logs")
    logs = [lg for r in ranges for lg in r.logs]
    logs.sort(key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
    blocks = sorted({int(lg["blockNumber"], 16) for lg in logs})
    stamps = _timestamps(client, blocks + [a, b])
    events = []
    for lg in logs:
        d = decode_log(lg["topics"], lg["data"])
        if d is None:
            continue
        addr = lg["address"].lower()
        if addr == params["oracle"] and d["event"] not in ("NewPriceOracle",):
            continue
        row = {"block_number": int(lg["blockNumber"], 16), "timestamp": stamps[int(lg["blockNumber"], 16)],
               "transaction_hash": lg["transactionHash"].lower(), "transaction_index": int(lg["transactionIndex"], 16),
               "log_index": int(lg["logIndex"], 16), "address": addr, "event": d["event"]}
        if "market" not in d and addr != inc.comptroller:
            d["market"] = addr
        for k in ADDRESS_COLUMNS:
            row[k] = d.get(k)
        for k in AMOUNT_COLUMNS:
            row[k] = _dec(d.get(k), f"{d['event']}.{k}")
        events.append(row)
    # Oracle logs mark a block whose price may change mid-block (the replay reads prices at its end).
    oracle_blocks = {int(lg["blockNumber"], 16) for lg in logs if lg["address"].lower() == params["oracle"]}
    stages["window"] = round(time.monotonic() - t, 3)

    t = time.monotonic()
    users = {r[k] for r in events for k in ("account", "counterparty") if r.get(k)}
    snapshots: dict[tuple[str, str], tuple[int, int]] = {}
    if since < a:
        old = fetch_logs(client, addresses=[m["market"] for m in markets], topics=None, from_block=since,
                         to_block=a - 1)
        old_logs = sorted((lg for r in old for lg in r.logs),
                          key=lambda lg: (int(lg["blockNumber"], 16), int(lg["logIndex"], 16)))
        index: dict[str, int] = {}
        for lg in old_logs:
            d = decode_log(lg["topics"], lg["data"])
            if not d:
                continue
            users |= {d[k] for k in ("account", "counterparty") if d.get(k)}
            mk = lg["address"].lower()
            if d["event"] == "AccrueInterest":
                index[mk] = d["borrow_index"]
            elif d["event"] in ("Borrow", "RepayBorrow"):
                # The cToken stores accountBorrows with the borrow index of that moment.
                snapshots[(d["account"], mk)] = (d["account_borrows"], index.get(mk, 10**18))
            elif d["event"] == "HealBorrow":
                snapshots[(d["account"], mk)] = (0, index.get(mk, 10**18))
    users -= {ZERO, *addrs}
    users = sorted(u for u in users if u)
    bar = _Progress(len(users), "positions", progress, unit="user")
    positions = _positions(client, inc, markets, users, start, snapshots if since < a else None)
    bar.close(f"{len(users)} users, {len(positions)} positions at block {start}")
    stages["positions"] = round(time.monotonic() - t, 3)

    t = time.monotonic()
    read_blocks = sorted({x for blk in blocks for x in (blk - 1, blk)} | {start, b} | oracle_blocks)
    reads = _market_reads(client, inc, [m["market"] for m in markets], read_blocks)
    stages["reads"] = round(time.monotonic() - t, 3)

    tables = {
        "compound_markets": _table("compound_markets", [{**m, "comptroller": inc.comptroller, **{
            k: params[k] for k in ("close_factor", "liquidation_incentive", "oracle", "min_liquidatable_collateral")},
            "block_number": start} for m in markets]),
        "compound_events": _table("compound_events", events),
        "compound_positions_at_start": _table("compound_positions_at_start", positions),
        "compound_market_reads": _table("compound_market_reads", reads),
    }
    written = []
    for name, table in tables.items():
        wh.write_chunk(chain, name, a, b, table, {"incident": inc.id})
        written.append(name)
    raw = raw_logs_from_rpc(logs)
    wh.write_chunk(chain, LOGS_DATASET, a, b, raw, {"incident": inc.id, CHUNK_DATASETS_KEY: sorted(written)})
    return {"markets": len(markets), "logs": len(logs), "events": len(events), "users": len(users),
            "positions_at_start": len(positions), "market_reads": len(reads)}


def _timestamps(client, blocks: list[int]) -> dict[int, int]:
    wanted = sorted(set(blocks))
    answers = client.map_batched([("eth_getBlockByNumber", [hex(x), False]) for x in wanted])
    return {x: int(h["timestamp"], 16) for x, h in zip(wanted, answers)}


def _positions(client, inc: Incident, markets: list[dict], users: list[str], block: int,
               snapshots: dict[tuple[str, str], tuple[int, int]] | None = None) -> list[dict]:
    """Each user's position per market at ``block``. ``snapshots`` (from the logs since
    ``users_since``: each account's last ``accountBorrows`` and the borrow index it was stored
    with) give the stored principal and interest index where they reproduce the borrow balance read."""
    index_now = {m["market"]: int(m["borrow_index"]) for m in markets}
    entered = run_reads(client, [Read(inc.comptroller, "getAssetsIn(address)", (u,), out=("address[]",), block=block)
                                 for u in users])
    reads, keys = [], []
    for u in users:
        for m in markets:
            reads.append(Read(m["market"], "getAccountSnapshot(address)", (u,),
                              out=("uint256", "uint256", "uint256", "uint256"), block=block))
            keys.append((u, m["market"]))
    snaps = run_reads(client, reads)
    ins = {u: {x.lower() for x in (e or [])} for u, e in zip(users, entered)}
    out = []
    for (u, m), s in zip(keys, snaps):
        if s is None:
            continue
        err, bal, borrow, _rate = s
        if err:
            raise PostmortemError(f"getAccountSnapshot({u}) on {m} failed with error {err} at block {block}")
        if bal or borrow or m in ins[u]:
            principal = interest_index = None
            snap = (snapshots or {}).get((u, m))
            if snap and snap[1] and (snap[0] * index_now[m] // snap[1] if snap[0] else 0) == int(borrow):
                principal, interest_index = snap
            out.append({"account": u, "market": m, "block_number": block, "ctoken_balance": _dec(int(bal), "balance"),
                        "borrow_balance": _dec(int(borrow), "borrow"), "entered": m in ins[u],
                        "borrow_principal": _dec(principal, "principal"),
                        "borrow_interest_index": _dec(interest_index, "interestIndex")})
    return out


def _market_reads(client, inc: Incident, markets: list[str], blocks: list[int]) -> list[dict]:
    oracles = run_reads(client, [Read(inc.comptroller, "oracle()", out=("address",), block=x) for x in blocks])
    sigs = ("exchangeRateStored()", "getCash()", "totalBorrows()", "totalReserves()", "totalSupply()", "borrowIndex()",
            "badDebt()")
    reads, keys = [], []
    for x, o in zip(blocks, oracles):
        for m in markets:
            reads.append(Read(o, "getUnderlyingPrice(address)", (m,), block=x))
            reads += [Read(m, s, block=x) for s in sigs]
            keys.append((x, o, m))
    vals = run_reads(client, reads)
    out, per = [], len(sigs) + 1
    for i, (x, o, m) in enumerate(keys):
        v = vals[i * per:(i + 1) * per]
        out.append({"block_number": x, "market": m, "oracle": (o or ZERO).lower(), "price": _dec(v[0], "price"),
                    "exchange_rate_stored": _dec(v[1], "exchangeRateStored"), "cash": _dec(v[2], "cash"),
                    "total_borrows": _dec(v[3], "totalBorrows"), "total_reserves": _dec(v[4], "totalReserves"),
                    "total_supply": _dec(v[5], "totalSupply"), "borrow_index": _dec(v[6], "borrowIndex"),
                    "bad_debt": _dec(v[7] or 0, "badDebt")})
    return out


def _table(name: str, rows: list[dict]) -> pa.Table:
    from postmortem import schema_docs

    schema = schema_docs.get(name).arrow_schema()
    cols = {f.name: [r.get(f.name) for r in rows] for f in schema}
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema}, schema=schema)
