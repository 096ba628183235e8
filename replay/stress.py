"""Stress: every position of the replayed markets at one block, valued under shocked prices.

The state is the one the exact replay reaches at the end of block ``--at`` (the window's start
means the positions at ``from_block - 1``). A shock moves the price of an asset by a percentage,
both the price the protocol reports and the market's (the crash is real); presets shock every
asset that is not a stablecoin (reported price not within 5% of 1 USD) by 20% or 30%.

For each borrower (exact integers, :mod:`replay.aave_math`):

- the health factor before the shock and under the shocked prices;
- whether it becomes liquidatable, and what liquidators could take in **one** ``liquidationCall``
  on its largest collateral and largest debt (close-factor rules applied once, as
  :func:`~replay.verdicts.max_liquidatable_debt` does): debt repaid, collateral seized with the
  protocol fee, and its value at the shocked price;
- the bad debt: ``max(0, totalDebtBase - totalCollateralBase)`` under the shocked prices.

``oracle_delay`` (blocks): the oracle reports the shock only N blocks later, so at the block the
protocol still sees the prices before it (``liquidatable_now`` uses those) while the positions are
already worth the shocked prices; what liquidators take is valued once the oracle has caught up.
Interest over the delay is not added.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import HEALTH_FACTOR_LIQUIDATION_THRESHOLD, health_factor
from postmortem.replay.prices import BASE_CURRENCY_UNIT, shift_price
from postmortem.replay.verdicts import max_liquidatable_debt

__all__ = ["PRESETS", "StressResult", "parse_shock", "preset_shocks", "stress_positions"]

ONE = HEALTH_FACTOR_LIQUIDATION_THRESHOLD
PRESETS = {"flash-crash-20": -2_000, "flash-crash-30": -3_000}


def parse_shock(text: str, symbols: set[str]) -> tuple[str, int]:
    """``"wstETH=-30%"`` -> ``("wstETH", -3000)`` (basis points), one sentence when wrong."""
    from decimal import Decimal, InvalidOperation

    sym, sep, raw = text.partition("=")
    sym, raw = sym.strip(), raw.strip()
    if not sep or not sym or not raw:
        raise PostmortemError(f"--shock {text!r} is not ASSET=PCT; e.g. --shock wstETH=-30%")
    found = next((s for s in symbols if s.lower() == sym.lower()), None)
    if found is None:
        raise PostmortemError(f"--shock {text!r}: unknown asset {sym!r}; the replayed reserves are "
                              f"{', '.join(sorted(symbols))}")
    try:
        bps = Decimal(raw[:-3]) if raw.lower().endswith("bps") else Decimal(raw.rstrip("%")) * 100
    except InvalidOperation:
        bps = None
    if bps is None or bps != bps.to_integral_value() or bps <= -10_000:
        raise PostmortemError(f"--shock {text!r}: {raw!r} is not a percentage above -100% with at most 2 decimals; "
                              "e.g. -30%")
    return found, int(bps)


def preset_shocks(name: str, reported: dict[str, int]) -> dict[str, int]:
    """A preset's shocks: every asset whose reported price (symbol -> base units) is not within 5%
    of 1 USD moves by the preset's percentage."""
    if name not in PRESETS:
        raise PostmortemError(f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    lo, hi = BASE_CURRENCY_UNIT * 95 // 100, BASE_CURRENCY_UNIT * 105 // 100
    return {sym: PRESETS[name] for sym, p in sorted(reported.items()) if not lo <= p <= hi}


@dataclass
class StressResult:
    block_number: int
    timestamp: int
    shocks: dict[str, int]
    oracle_delay: int
    rows: list[dict]
    by_market: list[dict] = field(default_factory=list)
    by_asset: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)


def stress_positions(state, market_of: dict[str, str], symbol: dict[tuple[str, str], str], shocks: dict[str, int],
                     *, oracle_delay: int = 0, liquidated_in_window: set[tuple[str, str]] = frozenset()) -> StressResult:
    """Value every borrower of ``state`` (a :class:`~replay.whatif.CheckpointState`) under ``shocks``."""
    cp = state.checkpoint
    rows = []
    for pool, ps in sorted(state.pools.items()):
        before = ps.reported
        shocked = {a: shift_price(p, shocks.get(symbol[(pool, a)], 0)) for a, p in before.items()}
        seen_by_protocol = before if oracle_delay else shocked
        for user, positions, emode_id in ps.users:
            cat = ps.emode.get(emode_id) if emode_id else None
            acc_b = health_factor(ps.revision, positions, ps.reserves, before, cat, cp.timestamp)
            acc_s = health_factor(ps.revision, positions, ps.reserves, shocked, cat, cp.timestamp)
            acc_now = acc_s if seen_by_protocol is shocked else acc_b
            if acc_s.total_debt_base == 0:
                continue
            row = {
                "market": market_of[pool], "pool": pool, "user": user, "block_number": cp.block_number,
                "timestamp": cp.timestamp, "emode_category": emode_id,
                "hf_before": acc_b.health_factor_wad, "hf_shocked": acc_s.health_factor_wad,
                "collateral_base_shocked": acc_s.total_collateral_base, "debt_base_shocked": acc_s.total_debt_base,
                "liquidatable_before": acc_b.health_factor_wad < ONE,
                "liquidatable_now": acc_now.health_factor_wad < ONE,
                "liquidatable": acc_s.health_factor_wad < ONE,
                "liquidated_in_window": (pool, user) in liquidated_in_window,
                "collateral_asset": None, "collateral_symbol": None, "debt_asset": None, "debt_symbol": None,
                "debt_to_cover": 0, "collateral_seized": 0, "collateral_seized_base": 0, "debt_repaid_base": 0,
                "bad_debt_base": max(0, acc_s.total_debt_base - acc_s.total_collateral_base),
            }
            if row["liquidatable"]:
                coll = max((v for v in acc_s.reserves if v.counts_as_collateral), key=lambda v: v.collateral_value_base,
                           default=None)
                debt = max((v for v in acc_s.reserves if v.debt_value_base), key=lambda v: v.debt_value_base,
                           default=None)
                if coll is not None and debt is not None:
                    amount, res = max_liquidatable_debt(ps.revision, positions, ps.reserves, shocked, cat, cp.timestamp,
                                                        collateral_asset=coll.asset, debt_asset=debt.asset)
                    if amount and not res.reverted:
                        cu, du = ps.reserves[coll.asset].asset_unit, ps.reserves[debt.asset].asset_unit
                        row.update(
                            collateral_asset=coll.asset, collateral_symbol=symbol[(pool, coll.asset)],
                            debt_asset=debt.asset, debt_symbol=symbol[(pool, debt.asset)],
                            debt_to_cover=res.actual_debt_to_liquidate, collateral_seized=res.collateral_seized,
                            collateral_seized_base=res.collateral_seized * shocked[coll.asset] // cu,
                            debt_repaid_base=res.actual_debt_to_liquidate * shocked[debt.asset] // du)
            rows.append(row)
    result = StressResult(cp.block_number, cp.timestamp, dict(shocks), oracle_delay, rows)
    result.by_market = _group(rows, ("market",))
    result.by_asset = _group([r for r in rows if r["collateral_symbol"]], ("market", "collateral_symbol", "debt_symbol"))
    result.totals = _group(rows, ())[0] if rows else _empty_totals()
    return result


_SUMS = ("collateral_seized_base", "debt_repaid_base", "bad_debt_base")


def _empty_totals() -> dict:
    return {"positions": 0, "liquidatable": 0, "liquidatable_now": 0, "liquidatable_before": 0,
            **{k: 0 for k in _SUMS}}


def _group(rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    out: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(r[x] for x in keys)
        g = out.setdefault(k, {**dict(zip(keys, k)), **_empty_totals()})
        g["positions"] += 1
        g["liquidatable"] += r["liquidatable"]
        g["liquidatable_now"] += r["liquidatable_now"]
        g["liquidatable_before"] += r["liquidatable_before"]
        if keys and "collateral_symbol" in keys:
            g["collateral_seized"] = g.get("collateral_seized", 0) + r["collateral_seized"]
            g["debt_to_cover"] = g.get("debt_to_cover", 0) + r["debt_to_cover"]
        for s in _SUMS:
            g[s] += r[s]
    return [out[k] for k in sorted(out, key=lambda t: tuple(str(x) for x in t))]
