"""The ``scale`` scenario: many borrowers for benchmarks (``borrowers=N``, default 2,000).

Borrowers are sized off-chain (explicit amounts) so that set-up can be mined in large blocks.
Their true health factors spread over 1.00-1.20 in eMode, so the capped price makes a known
share of them eligible; the timeline then moves feeds for a while, pushes the cap update and
liquidates some of the eligible ones.
"""

from __future__ import annotations

import random
from decimal import Decimal

LIVE_RATE = Decimal("1.228848994")
LT_CORE = Decimal("0.95")


def scale_scenario(borrowers: int = 2000, seed: int = 7, feed_blocks: int = 50, liquidations: int = 40) -> dict:
    rng = random.Random(seed)
    accounts = [{"label": "lender", "role": "lender",
                 "positions": [{"market": "core", "supply": {"WETH": str(1500 * borrowers + 10_000)}}]}]
    victims = []
    for i in range(borrowers):
        coll = Decimal(rng.randint(2_000, 200_000)) / 100  # 20 - 2000 wstETH
        hf = Decimal(1) + Decimal(rng.randint(3, 200)) / 1000
        debt = (coll * LIVE_RATE * LT_CORE / hf).quantize(Decimal("0.000001"))
        label = f"borrower-{i:06d}"
        role = "victim" if hf < Decimal("1.028") else "healthy"
        accounts.append({"label": label, "role": role if role == "victim" else "borrower",
                         "positions": [{"market": "core", "emode": 1, "supply": {"wstETH": str(coll)},
                                        "borrow": {"WETH": str(debt)}}]})
        if role == "victim" and hf > Decimal("1.006"):
            victims.append((label, debt))
    base_ts = 1773143171
    timeline = []
    price = Decimal(1900)
    for b in range(feed_blocks):
        price = (price * (1 + Decimal(rng.randint(-20, 20)) / 10_000)).quantize(Decimal("0.01"))
        timeline.append({"timestamp": base_ts - 12 * (feed_blocks - b) - 60,
                         "txs": [{"do": "set_feed", "feed": "eth_usd", "answer": str(price)},
                                 {"do": "set_feed", "feed": "cbeth_usd", "answer": str((price * Decimal("1.12")).quantize(Decimal("0.01")))}]})
    first = {"timestamp": base_ts, "txs": [{"do": "set_cap_parameters", "snapshot_ratio": "1.191916",
                                             "snapshot_timestamp": 1772535647, "max_yearly_growth_bps": 885}]}
    timeline.append(first)
    for k, (label, debt) in enumerate(victims[:liquidations]):
        if k % 10 == 0 and k:
            timeline.append({"timestamp": base_ts + 12 * (k // 10), "txs": []})
        timeline[-1]["txs"].append({"do": "liquidate", "market": "core", "user": label, "collateral": "wstETH",
                                    "debt": "WETH", "debt_to_cover": str((debt / 3).quantize(Decimal("0.000001"))),
                                    "liquidator": "liquidator-1"})
    timeline.append({"advance": 12, "txs": []})
    return {
        "name": "scale",
        "description": f"{borrowers} eMode borrowers on Core for benchmarks",
        "genesis_timestamp": base_ts - 86400,
        "true_rate": str(LIVE_RATE),
        "world": {"markets": {"prime": None}},
        "setup_batch": 150,
        "liquidators": ["liquidator-1"],
        "accounts": accounts,
        "timeline": timeline,
    }
