"""A synthetic warehouse with the replay's real output tables, for the report tests.

``build_warehouse(root, specs)`` writes real Parquet files with the documented schemas of
``replay.tables`` (verdicts, borrower_losses, liquidator_gains, at_risk, health, price_path) and
of ``ingest.tables`` (blocks, liquidations, markets, reserves), records an ingest and a replay run
the way those stages do, and refreshes the catalog. The liquidations are priced with integer math
in the shape of the 2026-03-10 wstETH incident: wstETH capped at 1.193946876 ETH while the live
rate is 1.228848994, a 1% eMode bonus and a 10% protocol fee on the bonus, and the loss split of
``replay/README.md``. The numbers are internally consistent, not Aave-exact: the report only
aggregates what the replay wrote, which is what these tests are about (the devchain test checks
the report against a real replay).

The builder's own checks are in tests/test_reports_synthetic.py. Test modules that build with it
import ``documented_schemas`` too: the module-scoped autouse fixture then applies in that module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import contextlib

import pyarrow as pa
import pytest

from postmortem.ingest import tables as ingest_tables
from postmortem import schema_docs
from postmortem.warehouse import Warehouse

CHAIN = 1
INCIDENT = "synthetic-wsteth-capo"
RUN = "20260310T120000Z-000001"

WSTETH = "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0"
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
CBETH = "0xbe9895146f7af43049ca1c1ae358b0541ea49704"
CORE = "0x87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
PRIME = "0x4e033931ad43597d96d6bcc25c280717730b58b1"
SYMBOLS = {WSTETH: "wstETH", WETH: "WETH", CBETH: "cbETH"}
POOLS = {"core": CORE, "prime": PRIME}

ETH_PRICE = 2_000 * 10**8  # base units
CBETH_PRICE = 2_200 * 10**8
TRUE_RATE = Fraction(1_228_848_994, 10**9)
CAP_RATE = Fraction(1_193_946_876, 10**9)
TRUE_PRICE = int(ETH_PRICE * TRUE_RATE)  # wstETH, base units
CAPPED_PRICE = int(ETH_PRICE * CAP_RATE)

FIRST_BLOCK = 24_626_850  # replay range start
MISPRICED_FROM = 24_626_860
MISPRICED_TO = 24_626_880
LAST_BLOCK = 24_626_890
T0 = 1_773_143_051  # timestamp of FIRST_BLOCK
WAD = 10**18
ETH = 10**18


@contextlib.contextmanager
def documented_tables():
    """The ingest's and the replay's documented schemas registered, and the registry as it was afterwards.

    The registry is process-wide: left registered, the replay's ``verdicts`` would refuse the toy
    tables other test modules write under that name.
    """
    saved = dict(schema_docs._REGISTRY)
    import postmortem.replay.tables as replay_tables  # registers on first import

    ingest_tables.register_docs()
    for doc in replay_tables.TABLES.values():
        schema_docs._REGISTRY[doc.name] = doc
    try:
        yield replay_tables
    finally:
        schema_docs._REGISTRY.clear()
        schema_docs._REGISTRY.update(saved)


@pytest.fixture(scope="module", autouse=True)
def documented_schemas():
    """Autouse in every report test module that imports it (module scope: before its warehouses are built)."""
    with documented_tables() as replay_tables:
        yield replay_tables


def ts(block: int) -> int:
    return T0 + 12 * (block - FIRST_BLOCK)


def addr(tag: str, n: int) -> str:
    return "0x" + (tag * 40)[:36] + f"{n:04x}"


@dataclass
class Liq:
    """One liquidation as a test states it; ``verdict_row`` prices the rest."""

    block: int
    tx_index: int
    log_index: int
    market: str
    user: str
    liquidator: str
    debt_to_cover: int
    verdict: str = "wrongly_eligible"
    debt_asset: str = WETH
    hf_reported: int = 985 * 10**15
    hf_true: int = 1_014 * 10**15
    overrides: dict = field(default_factory=dict)  # amounts stated by the test, applied before the losses


def reported_price(block: int) -> int:
    return CAPPED_PRICE if MISPRICED_FROM <= block <= MISPRICED_TO else TRUE_PRICE


def verdict_row(liq: Liq) -> dict:
    """Every verdicts column for one liquidation (amounts exact ints), losses as replay/README.md splits them."""
    pr, pt = reported_price(liq.block), TRUE_PRICE
    q = ETH_PRICE if liq.debt_asset == WETH else CBETH_PRICE
    d = liq.debt_to_cover
    base = d * q // pr
    seized = base * 10_100 // 10_000
    fee = (seized - base) * 1_000 // 10_000
    c = liq.overrides.get("liquidated_collateral_amount", seized - fee)
    f = liq.overrides.get("protocol_fee_amount", fee)

    def three(name: str, value_base: int) -> dict:  # base units -> base, collateral units, ETH wei
        return {f"{name}_base": value_base, f"{name}_collateral": value_base * WAD // pt,
                f"{name}_eth_wei": value_base * WAD // ETH_PRICE}

    wrong = liq.verdict == "wrongly_eligible"
    row = {
        "market": liq.market, "pool": POOLS[liq.market], "block_number": liq.block,
        "transaction_index": liq.tx_index, "log_index": liq.log_index,
        "transaction_hash": "0x" + f"{liq.block:08x}{liq.tx_index:04x}{liq.log_index:04x}".rjust(64, "a"),
        "timestamp": ts(liq.block), "checkpoint": liq.log_index, "user": liq.user, "liquidator": liq.liquidator,
        "collateral_asset": WSTETH, "collateral_symbol": "wstETH", "debt_asset": liq.debt_asset,
        "debt_symbol": SYMBOLS[liq.debt_asset], "debt_to_cover": d, "liquidated_collateral_amount": c,
        "protocol_fee_amount": f, "protocol_fee_source": "transfer_log", "collateral_seized": c + f,
        "receive_a_token": False, "emode_category": 1, "hf_reported": liq.hf_reported, "hf_true": liq.hf_true,
        "verdict": liq.verdict, "collateral_price_reported": pr, "collateral_price_true": pt,
        "debt_price_reported": q, "debt_price_true": q, "eth_price_true": ETH_PRICE,
        "max_liquidatable_debt_reported": d, "max_liquidatable_debt_true": 0 if wrong else d,
        "close_factor_bps_reported": 10_000, "over_liquidated_debt": d if wrong else 0, "replay_matches_log": True,
        **three("oracle_loss", c * (pt - pr) // WAD),
        **three("fee_oracle_loss", f * (pt - pr) // WAD),
        **three("bonus_loss", (c + f) * pr // WAD - d * q // WAD),
        **three("borrower_loss", (c + f) * pt // WAD - d * q // WAD),
    }
    row.update({k: v for k, v in liq.overrides.items() if k in row})
    return row


U = [addr("b", i) for i in range(1, 13)]  # borrowers
L = [addr("c", i) for i in range(1, 5)]  # liquidators


def default_specs() -> list[Liq]:
    """The incident in miniature: 13 liquidations, 10 wrongly eligible (one repaying cbETH)."""
    return [
        Liq(24_626_855, 3, 10, "core", U[8], L[0], 40 * ETH, "eligible_anyway", hf_reported=970 * 10**15, hf_true=975 * 10**15),
        Liq(24_626_860, 0, 17, "core", U[0], L[0], 6_304 * ETH + 565_167_623_755_951_957, hf_reported=982 * 10**15, hf_true=1_017 * 10**15),
        Liq(24_626_860, 1, 25, "prime", U[0], L[1], 1_200 * ETH, hf_reported=990 * 10**15, hf_true=1_025 * 10**15),
        Liq(24_626_861, 0, 14, "core", U[1], L[1], 2_218 * ETH + 66_481_074_625_052_672, hf_reported=985 * 10**15, hf_true=1_019 * 10**15),
        Liq(24_626_861, 4, 37, "core", U[2], L[2], 1_366 * ETH + 394_661_395_882_701_753, hf_reported=992 * 10**15, hf_true=1_027 * 10**15),
        Liq(24_626_862, 2, 8, "prime", U[3], L[0], 950 * ETH, hf_reported=995 * 10**15, hf_true=1_020 * 10**15),
        Liq(24_626_862, 5, 40, "prime", U[4], L[1], 310 * ETH + 5 * 10**17, hf_reported=997 * 10**15, hf_true=1_022 * 10**15),
        Liq(24_626_862, 6, 44, "core", U[7], L[2], 75 * ETH, "eligible_anyway", hf_reported=950 * 10**15, hf_true=984 * 10**15),
        Liq(24_626_863, 1, 9, "core", U[5], L[0], 88 * ETH + 123, debt_asset=CBETH, hf_reported=991 * 10**15, hf_true=1_024 * 10**15),
        Liq(24_626_863, 2, 12, "prime", U[6], L[3], 12 * ETH + 345_678_901_234_567, hf_reported=999 * 10**15, hf_true=1_001 * 10**15),
        Liq(24_626_864, 0, 3, "core", U[1], L[1], 500 * ETH, hf_reported=988 * 10**15, hf_true=1_016 * 10**15),
        Liq(24_626_866, 3, 21, "prime", U[9], L[2], 30 * ETH, "anomaly", hf_reported=1_003 * 10**15, hf_true=1_030 * 10**15),
        Liq(24_626_870, 0, 5, "core", U[10], L[3], 2 * ETH, hf_reported=998 * 10**15, hf_true=1_0005 * 10**14),
    ]


def reimbursable_wei(rows: list[dict]) -> dict[str, int]:
    """The replay's rule, per user: oracle + fee oracle loss of every liquidation, bonus of the wrongly eligible."""
    out: dict[str, int] = {}
    for r in rows:
        owed = r["oracle_loss_eth_wei"] + r["fee_oracle_loss_eth_wei"]
        if r["verdict"] == "wrongly_eligible":
            owed += r["bonus_loss_eth_wei"]
        out[r["user"]] = out.get(r["user"], 0) + owed
    return {u: v for u, v in out.items() if v > 0}


def documented(name: str, rows: list[dict]) -> pa.Table:
    """``rows`` as the documented Arrow table of ``name`` (every documented column, its type)."""
    doc = schema_docs.get(name)
    arrays = []
    for c in doc.columns:
        values = [r.get(c.name) for r in rows]
        if pa.types.is_decimal(c.type):
            values = [None if v is None else Decimal(int(v)) for v in values]
        arrays.append(pa.array(values, c.type))
    return pa.Table.from_arrays(arrays, schema=doc.arrow_schema())


@dataclass
class Synthetic:
    """What was written, for tests to compare with."""

    root: Path
    rows: list[dict]
    run_id: str = RUN
    incident_id: str = INCIDENT
    rpc_url: str = "https://eth-mainnet.g.alchemy.com/v2/AbCdEf0123456789SECRETKEY"


def build_warehouse(root: Path, specs: list[Liq] | None = None, *, run_id: str = RUN, incident_id: str = INCIDENT,
                    price_path: bool = True, extra_outputs: bool = True, rows: list[dict] | None = None,
                    ingest: bool = True, record_replay: bool = True) -> Synthetic:
    """Write a complete synthetic warehouse at ``root`` and refresh its catalog."""
    wh = Warehouse(root)
    rows = rows if rows is not None else [verdict_row(s) for s in (specs or default_specs())]
    syn = Synthetic(Path(root), rows, run_id, incident_id)
    params = {"incident_id": incident_id, "from_block": FIRST_BLOCK, "to_block": LAST_BLOCK, "pools": POOLS,
              "chain_id": CHAIN, "true_price": {"wstETH": "uncapped"}, "health_band": 1.1, "eth_asset": WETH}
    if ingest:
        _write_ingest(wh, rows, incident_id, syn.rpc_url)
    inputs = wh.input_hashes(CHAIN, ["blocks", "liquidations", "markets", "reserves"], FIRST_BLOCK, LAST_BLOCK)
    provenance = {"parameters": params if record_replay else {}, "inputs": inputs, "tool_version": "0.1.0"}

    def out(name: str, table_rows: list[dict]) -> None:
        wh.write_output(CHAIN, name, incident_id, run_id, documented(name, table_rows), provenance)

    out("verdicts", rows)
    if extra_outputs:
        _write_extras(out, rows)
    if price_path:
        path = []
        for market, pool in POOLS.items():
            for b in range(FIRST_BLOCK, LAST_BLOCK + 1):
                for asset, rp, tp in ((WSTETH, reported_price(b), TRUE_PRICE), (WETH, ETH_PRICE, ETH_PRICE),
                                      (CBETH, CBETH_PRICE, CBETH_PRICE)):
                    path.append({"market": market, "pool": pool, "asset": asset, "symbol": SYMBOLS[asset],
                                 "block_number": b, "timestamp": ts(b), "reported_price": rp, "true_price": tp,
                                 "oracle_price": rp})
        out("price_path", path)
    if record_replay:
        wh.record_run("replay", params, {"liquidations": len(rows)}, run_id=run_id)
    wh.refresh_catalog()
    return syn


def _write_ingest(wh: Warehouse, rows: list[dict], incident_id: str, rpc_url: str) -> None:
    blocks = [{"block_number": b, "block_hash": f"0x{b:064x}", "parent_hash": f"0x{b - 1:064x}", "timestamp": ts(b)}
              for b in range(FIRST_BLOCK - 50, LAST_BLOCK + 10)]
    wh.write_chunk(CHAIN, "blocks", FIRST_BLOCK - 50, FIRST_BLOCK - 1,
                   documented("blocks", [b for b in blocks if b["block_number"] < FIRST_BLOCK]))
    wh.write_chunk(CHAIN, "blocks", FIRST_BLOCK, LAST_BLOCK + 9,
                   documented("blocks", [b for b in blocks if b["block_number"] >= FIRST_BLOCK]))
    logs = [{
        "block_number": r["block_number"], "block_hash": f"0x{r['block_number']:064x}",
        "transaction_hash": r["transaction_hash"], "transaction_index": r["transaction_index"],
        "log_index": r["log_index"], "address": r["pool"], "collateral_asset": r["collateral_asset"],
        "debt_asset": r["debt_asset"], "user": r["user"], "debt_to_cover": r["debt_to_cover"],
        "liquidated_collateral_amount": r["liquidated_collateral_amount"], "liquidator": r["liquidator"],
        "receive_a_token": r["receive_a_token"], "debt_to_cover_units": r["debt_to_cover"] / 1e18,
        "liquidated_collateral_amount_units": r["liquidated_collateral_amount"] / 1e18,
    } for r in rows]
    wh.write_chunk(CHAIN, "liquidations", FIRST_BLOCK, LAST_BLOCK + 9, documented("liquidations", logs))
    # The raw logs the decoded liquidations came from (the report counts one against the other).
    wh.write_chunk(CHAIN, "logs", FIRST_BLOCK, LAST_BLOCK + 9, raw_logs(rows))
    markets = [{"market": m, "pool": p, "pool_revision": 10, "aave_revision": "3.6", "block_number": LAST_BLOCK + 9}
               for m, p in POOLS.items()]
    wh.write_chunk(CHAIN, "markets", LAST_BLOCK + 9, LAST_BLOCK + 9, documented("markets", markets))
    reserves = [{"market": m, "pool": p, "asset": a, "symbol": s, "decimals": 18, "reserve_id": i}
                for m, p in POOLS.items() for i, (a, s) in enumerate(SYMBOLS.items())]
    wh.write_chunk(CHAIN, "reserves", LAST_BLOCK + 9, LAST_BLOCK + 9, documented("reserves", reserves))
    wh.record_run("ingest", {"rpc_url": rpc_url, "incident": incident_id, "pools": POOLS,
                             "from_block": FIRST_BLOCK, "to_block": LAST_BLOCK}, {"chunks": 5}, run_id="0123456789ab")


def raw_logs(rows: list[dict]) -> pa.Table:
    """The raw ``LiquidationCall`` logs of ``rows`` (topics and data as the chain encodes them)."""
    from postmortem.ingest.events import EVENTS, RAW_LOG_SCHEMA

    (ev,) = [e for e in EVENTS if e.name == "LiquidationCall"]

    def word(x: int | str | bool) -> bytes:
        return (int(x, 16) if isinstance(x, str) else int(x)).to_bytes(32, "big")

    out = []
    for r in rows:
        out.append({
            "block_number": r["block_number"], "block_hash": f"0x{r['block_number']:064x}",
            "transaction_hash": r["transaction_hash"], "transaction_index": r["transaction_index"],
            "log_index": r["log_index"], "address": r["pool"], "topic0": ev.topic0,
            "topic1": word(r["collateral_asset"]), "topic2": word(r["debt_asset"]), "topic3": word(r["user"]),
            "data": word(r["debt_to_cover"]) + word(r["liquidated_collateral_amount"]) + word(r["liquidator"])
                    + word(r["receive_a_token"]),
        })
    return pa.Table.from_pylist(out, schema=RAW_LOG_SCHEMA)


def _write_extras(out, rows: list[dict]) -> None:
    losses: dict[tuple, dict] = {}
    for r in rows:
        key = (r["market"], r["user"])
        u = losses.setdefault(key, {"market": r["market"], "pool": r["pool"], "user": r["user"], "liquidations": 0,
                                    "wrongly_eligible_liquidations": 0, "reimbursable_eth_wei": 0})
        u["liquidations"] += 1
        u["wrongly_eligible_liquidations"] += r["verdict"] == "wrongly_eligible"
        for part in ("oracle_loss", "fee_oracle_loss", "bonus_loss", "borrower_loss"):
            for unit in ("base", "eth_wei"):
                u[f"{part}_{unit}"] = u.get(f"{part}_{unit}", 0) + r[f"{part}_{unit}"]
        u["reimbursable_eth_wei"] += r["oracle_loss_eth_wei"] + r["fee_oracle_loss_eth_wei"] + (
            r["bonus_loss_eth_wei"] if r["verdict"] == "wrongly_eligible" else 0)
    out("borrower_losses", sorted(losses.values(), key=lambda u: (u["market"], u["user"])))
    gains: dict[tuple, dict] = {}
    for r in rows:
        g = gains.setdefault((r["market"], r["liquidator"]), {
            "market": r["market"], "pool": r["pool"], "liquidator": r["liquidator"], "liquidations": 0,
            "wrongly_eligible_liquidations": 0, "gain_base": 0, "gain_eth_wei": 0})
        g["liquidations"] += 1
        g["wrongly_eligible_liquidations"] += r["verdict"] == "wrongly_eligible"
        gain = r["liquidated_collateral_amount"] * r["collateral_price_true"] // WAD - r["debt_to_cover"] * r["debt_price_true"] // WAD
        g["gain_base"] += gain
        g["gain_eth_wei"] += gain * WAD // ETH_PRICE
    out("liquidator_gains", sorted(gains.values(), key=lambda g: (g["market"], g["liquidator"])))
    out("at_risk", [
        {"market": "core", "pool": CORE, "user": U[11], "checkpoints_wrongly_eligible": 21,
         "first_block": MISPRICED_FROM, "first_timestamp": ts(MISPRICED_FROM), "last_block": MISPRICED_TO,
         "last_timestamp": ts(MISPRICED_TO), "seconds_wrongly_eligible": 12 * (MISPRICED_TO - MISPRICED_FROM + 1),
         "min_hf_reported": 994 * 10**15, "hf_true_at_min": 1_023 * 10**15, "max_debt_base_reported": 840_000 * 10**8,
         "exposed_loss_eth_wei": 17 * ETH},
        {"market": "prime", "pool": PRIME, "user": U[3], "checkpoints_wrongly_eligible": 3,
         "first_block": MISPRICED_FROM, "first_timestamp": ts(MISPRICED_FROM), "last_block": MISPRICED_FROM + 2,
         "last_timestamp": ts(MISPRICED_FROM + 2), "seconds_wrongly_eligible": 36, "min_hf_reported": 998 * 10**15,
         "hf_true_at_min": 1_020 * 10**15, "max_debt_base_reported": 30_000 * 10**8, "exposed_loss_eth_wei": ETH // 2},
    ])
    out("health", [{"market": r["market"], "pool": r["pool"], "user": r["user"], "checkpoint": r["checkpoint"],
                    "checkpoint_kind": "liquidation", "block_number": r["block_number"],
                    "transaction_index": r["transaction_index"], "timestamp": r["timestamp"], "emode_category": 1,
                    "hf_reported": r["hf_reported"], "hf_true": r["hf_true"],
                    "wrongly_eligible": r["verdict"] == "wrongly_eligible", "liquidated_here": True} for r in rows])
