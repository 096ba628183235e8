"""Explain: one borrower's story over the window, from the same exact replay.

For a user of the replayed markets (:func:`explain_user` over a :class:`~replay.whatif.Trace`):

- ``positions``: what they held at the start of the window (collateral and debt per reserve,
  token units, exact), their eMode category;
- ``health``: their health factor at every checkpoint where they had debt, under the reported
  and the true price (wad, exact);
- ``liquidation_price``: at each of those checkpoints, the price of their main collateral (the
  largest at the true price) below which the position was liquidatable, the other prices as
  reported: the smallest integer price with a health factor of at least 1 (bisection; the health
  factor never falls as a collateral price rises). Beside it the reported and the true price;
- ``liquidations``: each ``LiquidationCall`` of theirs with its verdict, health factors and loss
  parts, straight from the replay's verdict rows (the same numbers);
- ``lost``: their borrower loss, oracle loss and bonus loss summed over those rows (ETH wei).

What they are owed under each reimbursement policy is the reports stage's (``reports.policy``);
the pipeline adds it.
"""

from __future__ import annotations

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import HEALTH_FACTOR_LIQUIDATION_THRESHOLD, health_factor

__all__ = ["explain_user"]

ONE = HEALTH_FACTOR_LIQUIDATION_THRESHOLD


def _address(text: str) -> str:
    t = text.strip().lower()
    if not (t.startswith("0x") and len(t) == 42 and all(c in "0123456789abcdef" for c in t[2:])):
        raise PostmortemError(f"--user {text!r} is not an address; give 0x followed by 40 hex digits")
    return t


def liquidation_price(ps, positions, cat, ts: int, asset: str, prices: dict[str, int]) -> int | None:
    """The smallest integer price of ``asset`` with a health factor >= 1 (others as in ``prices``);
    None when even a price of 0 keeps the position healthy or no price up to 2^128 does."""
    def healthy(p: int) -> bool:
        return health_factor(ps.revision, positions, ps.reserves, {**prices, asset: p}, cat, ts).health_factor_wad >= ONE

    if healthy(0):
        return None
    hi = max(prices.get(asset, 1), 1)
    while not healthy(hi):
        hi *= 2
        if hi > 2**128:
            return None
    lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if healthy(mid):
            hi = mid
        else:
            lo = mid
    return hi


def explain_user(trace, user: str) -> dict:
    """The story of ``user`` (see the module docstring); one sentence when the user is unknown."""
    user = _address(user)
    health, positions_start = [], []
    seen = False
    first_seen: set[str] = set()
    for cps in trace.checkpoints:
        cp = cps.checkpoint
        for pool, ps in sorted(cps.pools.items()):
            entry = next(((p, e) for u, p, e in ps.users if u == user), None)
            if entry is None and cps.liquidation is not None and cps.liquidation["user"] == user \
                    and cps.liquidation["address"] == pool:
                entry = (cps.liquidated_positions, cps.liquidated_emode)
            if entry is None:
                continue
            seen = True
            positions, emode_id = entry
            cat = ps.emode.get(emode_id) if emode_id else None
            acc_r = health_factor(ps.revision, positions, ps.reserves, ps.reported, cat, cp.timestamp)
            acc_t = health_factor(ps.revision, positions, ps.reserves, ps.true, cat, cp.timestamp)
            if pool not in first_seen:
                first_seen.add(pool)
                for v in acc_t.reserves:
                    positions_start.append({
                        "market": trace.market_of[pool], "pool": pool, "block_number": cp.block_number,
                        "asset": v.asset, "symbol": trace.symbol[(pool, v.asset)], "emode_category": emode_id,
                        "collateral": v.collateral_balance, "used_as_collateral": v.counts_as_collateral,
                        "debt": v.debt_balance, "decimals": len(str(ps.reserves[v.asset].asset_unit)) - 1,
                        "collateral_value_base_true": v.collateral_value_base,
                        "debt_value_base_true": v.debt_value_base,
                    })
            main = max((v for v in acc_t.reserves if v.counts_as_collateral), key=lambda v: v.collateral_value_base,
                       default=None)
            lp = (liquidation_price(ps, positions, cat, cp.timestamp, main.asset, ps.reported)
                  if main is not None else None)
            health.append({
                "market": trace.market_of[pool], "checkpoint": cp.ordinal, "checkpoint_kind": cp.kind,
                "block_number": cp.block_number, "transaction_index": cp.transaction_index,
                "timestamp": cp.timestamp, "hf_reported": acc_r.health_factor_wad, "hf_true": acc_t.health_factor_wad,
                "collateral_symbol": trace.symbol[(pool, main.asset)] if main else None,
                "collateral_price_reported": ps.reported[main.asset] if main else None,
                "collateral_price_true": ps.true[main.asset] if main else None,
                "liquidation_price": lp,
                "liquidated_here": bool(cps.liquidation is not None and cps.liquidation["user"] == user
                                        and cps.liquidation["address"] == pool),
            })
    liquidations = [v for v in trace.verdicts if v["user"] == user]
    if not seen and not liquidations:
        raise PostmortemError(f"user {user} has no debt in the replayed markets during the window and was not "
                              "liquidated; check the address (`postmortem sql \"select distinct user from verdicts\"`)")
    lost = {}
    for name in ("borrower_loss", "oracle_loss", "fee_oracle_loss", "bonus_loss"):
        vals = [v.get(f"{name}_eth_wei") for v in liquidations]
        lost[f"{name}_eth_wei"] = None if any(x is None for x in vals) else sum(vals)
    lost["wrongly_eligible_bonus_loss_eth_wei"] = sum(int(v.get("bonus_loss_eth_wei") or 0) for v in liquidations
                                                       if v["verdict"] == "wrongly_eligible")
    return {"user": user, "from_block": trace.from_block, "to_block": trace.to_block, "positions": positions_start,
            "health": health, "liquidations": liquidations, "lost": lost}
