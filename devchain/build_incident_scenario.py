"""Build ``scenarios/wsteth-capo-2026-03-10.json`` from the decoded mainnet liquidation logs.

Usage: python -m postmortem.devchain.build_incident_scenario ../shared/reference/incident-2026-03-10-liquidations.csv

Each mainnet borrower becomes a devchain borrower (one position per market it was liquidated
in) whose debt is sized so that every liquidation of the window can repay what it repaid on
mainnet under the v3.6 close factor and dust rules, and whose collateral puts its health factor
at the *true* price just above 1 (so the capped price makes it eligible). Liquidations keep their
mainnet order, block offsets, timestamps, amounts and liquidator grouping; osETH debt (not
deployed here) becomes cbETH debt. What each liquidation targeted and what happened on the
devchain are both kept in the ground truth. The generated JSON is committed: the scenario is data.
"""

from __future__ import annotations

import csv
import json
import sys
from collections import OrderedDict
from decimal import ROUND_UP, Decimal
from pathlib import Path

UPDATE_BLOCK = 24626860
LAST_CAPPED = 24628088
LIVE_RATE = Decimal("1.228848994")
ASSET_SYMBOLS = {
    "0x7f39c581f595b53c5cb19bd0b3f8da6c935e2ca0": "wstETH",
    "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2": "WETH",
    "0xbe9895146f7af43049ca1c1ae358b0541ea49704": "cbETH",
    "0xf1c9acdc66974dfb6decb12aa385b9cd01190e38": "cbETH",  # osETH on mainnet
    "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": "USDC",
}
LT = {"core": Decimal("0.95"), "prime": Decimal("0.965")}
# Positions worth less than this (in ETH) are liquidated whole: the dust rule forbids leaving
# less than 1000 USD behind, and the close factor is 100% under 2000 USD.
SMALL_DEBT_ETH = Decimal("0.9")
DUST_MARGIN_ETH = Decimal("0.75")
Q = Decimal("0.000001")


def wei(x: str) -> Decimal:
    return Decimal(x) / Decimal(10**18)


def size_debt(covers: list[Decimal]) -> Decimal:
    """Smallest debt from which each cover in turn is at most half of what is left (close
    factor 50% while HF > 0.95), leaving at least the dust margin at the end."""
    need = covers[-1] + DUST_MARGIN_ETH
    need = max(need, 2 * covers[-1])
    for c in reversed(covers[:-1]):
        need = max(2 * c, c + need)
    return need


def build(csv_path: Path) -> dict:
    rows = [r for r in csv.DictReader(open(csv_path)) if UPDATE_BLOCK <= int(r["block"]) <= LAST_CAPPED]
    rows.sort(key=lambda r: (int(r["block"]), int(r["log_index"])))
    positions: "OrderedDict[tuple[str, str], list[dict]]" = OrderedDict()
    for r in rows:
        positions.setdefault((r["user"], r["market"]), []).append(r)
    labels: dict[str, str] = {}
    accounts: list[dict] = []
    liquidator_labels: dict[str, str] = {}
    for (user, market), liqs in positions.items():
        label = labels.setdefault(user, f"victim-{len(labels) + 1:02d}")
        covers = [wei(r["debt_to_cover"]) for r in liqs]
        debt_sym = ASSET_SYMBOLS[liqs[0]["debt_asset"]]
        small = sum(covers) < SMALL_DEBT_ETH and len(liqs) == 1
        debt = (covers[0] * Decimal("1.0") if small else size_debt(covers)).quantize(Q, ROUND_UP)
        # True-price health factor: spread across (1, 1.028); several liquidations need room.
        idx = len(accounts)
        hf = Decimal("1.004") if len(liqs) > 1 else Decimal("1.006") + Decimal(idx % 10) * Decimal("0.002")
        collateral = (hf * debt / (LT[market] * LIVE_RATE)).quantize(Q, ROUND_UP)
        pos = {"market": market, "emode": 1, "supply": {"wstETH": str(collateral)},
               "borrow": {debt_sym: {"target_hf": str(hf)}}}
        existing = next((a for a in accounts if a["label"] == label), None)
        if existing:
            existing["positions"].append(pos)
        else:
            accounts.append({"label": label, "role": "victim", "mainnet_user": user, "positions": [pos]})
        for r in liqs:
            r["_label"] = label
            r["_small"] = small
            liquidator_labels.setdefault(r["liquidator"], f"liquidator-{len(liquidator_labels) + 1}")

    controls = [
        {"label": "healthy-core", "role": "healthy",
         "positions": [{"market": "core", "emode": 1, "supply": {"wstETH": "400"}, "borrow": {"WETH": {"target_hf": "1.08"}}}]},
        {"label": "healthy-prime", "role": "healthy",
         "positions": [{"market": "prime", "emode": 1, "supply": {"wstETH": "250"}, "borrow": {"WETH": {"target_hf": "1.05"}}}]},
        {"label": "healthy-core-2", "role": "healthy",
         "positions": [{"market": "core", "emode": 1, "supply": {"wstETH": "120"}, "borrow": {"WETH": {"target_hf": "1.10"}}}]},
        {"label": "healthy-outside-emode", "role": "healthy",
         "positions": [{"market": "core", "emode": 0, "supply": {"wstETH": "300"}, "borrow": {"WETH": {"target_hf": "1.06"}}}]},
        {"label": "eligible-not-liquidated", "role": "eligible_not_liquidated",
         "positions": [{"market": "prime", "emode": 1, "supply": {"wstETH": "180"}, "borrow": {"WETH": {"target_hf": "1.02"}}}]},
        {"label": "rightly-liquidated", "role": "rightly_liquidated",
         "positions": [{"market": "core", "emode": 0, "supply": {"wstETH": "40"}, "borrow": {"USDC": {"target_hf": "1.04"}}}]},
    ]
    lenders = [
        {"label": "lender", "role": "lender",
         "positions": [{"market": m, "supply": {"WETH": "200000", "cbETH": "20000", "USDC": "50000000"}}
                       for m in ("core", "prime")]},
    ]

    base_ts = int(rows[0]["timestamp"])
    timeline: list[dict] = [
        # Ordinary life before the window: a day passes, ETH/USD falls 5% by feed updates
        # (cbETH/USD with it, so ETH-correlated positions keep their health factor).
        {"timestamp": base_ts - 3600, "txs": [{"do": "set_feed", "feed": "eth_usd", "answer": "1900"},
                                              {"do": "set_feed", "feed": "cbeth_usd", "answer": "2128"}]},
        {"timestamp": base_ts - 12, "txs": [
            {"do": "supply", "market": "core", "user": "healthy-core", "asset": "wstETH", "amount": "5"}]},
    ]
    by_block: "OrderedDict[int, list[dict]]" = OrderedDict()
    for r in rows:
        by_block.setdefault(int(r["block"]), []).append(r)
    # The update block holds the parameter push then several liquidations (as on mainnet, the
    # first liquidators back-ran it); we move the first two of the next block into it.
    blocks = list(by_block)
    moved = by_block[blocks[1]][:2]
    by_block[blocks[1]] = by_block[blocks[1]][2:]
    by_block[blocks[0]] = by_block[blocks[0]] + moved

    def liq_tx(r: dict) -> dict:
        return {
            "do": "liquidate", "market": r["market"], "user": r["_label"],
            "collateral": ASSET_SYMBOLS[r["collateral_asset"]], "debt": ASSET_SYMBOLS[r["debt_asset"]],
            "debt_to_cover": "max" if r["_small"] else str(wei(r["debt_to_cover"])),
            "receive_a_token": r["receive_atoken"] == "true",
            "liquidator": liquidator_labels[r["liquidator"]],
            "ref": {"mainnet_block": int(r["block"]), "mainnet_log_index": int(r["log_index"]),
                    "mainnet_tx": r["tx"], "mainnet_user": r["user"],
                    "mainnet_debt_to_cover": r["debt_to_cover"],
                    "mainnet_liquidated_collateral_amount": r["liquidated_collateral_amount"]},
        }

    extra = {
        # Ordinary activity inside the window, placed between liquidations.
        1: [{"do": "repay", "market": "core", "user": "healthy-core", "asset": "WETH", "amount": "20"}],
        2: [{"do": "withdraw", "market": "prime", "user": "healthy-prime", "asset": "wstETH", "amount": "3"}],
        3: [{"do": "transfer_a_token", "market": "core", "from": "healthy-core", "to": "healthy-core-2",
             "asset": "wstETH", "amount": "10"}],
        5: [{"do": "liquidate", "market": "core", "user": "rightly-liquidated", "collateral": "wstETH",
             "debt": "USDC", "debt_to_cover": "20000", "receive_a_token": True, "liquidator": "liquidator-1",
             "ref": {"note": "control: unhealthy at the true price after the ETH/USD fall"}}],
    }
    for i, (blk, rs) in enumerate(by_block.items()):
        txs: list[dict] = []
        if i == 0:
            txs.append({"do": "set_cap_parameters", "snapshot_ratio": "1.191916",
                        "snapshot_timestamp": 1772535647, "max_yearly_growth_bps": 885,
                        "ref": {"mainnet_block": UPDATE_BLOCK}})
        txs += [liq_tx(r) for r in rs]
        # A receiveAToken liquidation, which mainnet's window did not have, to exercise the path.
        if i == 2 and txs:
            txs[-1]["receive_a_token"] = True
        pre = extra.get(i, [])
        txs = pre[:1] + txs if i != 5 else txs + pre
        timeline.append({"timestamp": int(rs[0]["timestamp"]), "mainnet_block": blk, "txs": txs})
    fix_ts = base_ts + (LAST_CAPPED + 1 - UPDATE_BLOCK) * 12
    timeline.append({"timestamp": fix_ts, "mainnet_block": LAST_CAPPED + 1, "txs": [
        {"do": "set_cap_parameters", "snapshot_ratio": "1.2282", "snapshot_timestamp": fix_ts - 7 * 86400,
         "max_yearly_growth_bps": 885, "ref": {"note": "snapshot realigned"}}]})
    timeline.append({"advance": 12, "txs": []})
    return {
        "name": "wsteth-capo-2026-03-10",
        "description": "The 2026-03-10 wstETH capped-oracle incident on Aave v3.6 Core and Prime, reproduced "
                       "from its decoded mainnet liquidation logs.",
        "genesis_timestamp": base_ts - 86400,
        "window": {"first_block_offset": 0, "mainnet_first_block": UPDATE_BLOCK, "mainnet_last_capped_block": LAST_CAPPED},
        "true_rate": str(LIVE_RATE),
        "liquidators": sorted(set(liquidator_labels.values()), key=lambda s: int(s.split("-")[1])),
        "accounts": lenders + accounts + controls,
        "timeline": timeline,
    }


def main() -> None:
    out = Path(__file__).resolve().parent / "scenarios" / "wsteth-capo-2026-03-10.json"
    out.write_text(json.dumps(build(Path(sys.argv[1])), indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
