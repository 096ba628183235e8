"""The reserve book: every reserve's state (indexes, rates, risk parameters) and every eMode
category of each pool, moved forward by ``ReserveDataUpdated`` and the configurator's events.

Indexes and rates are exact ray integers as the Pool wrote them; risk parameters are basis points.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Mapping

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import EModeCategory, ReserveState, Revision, decode_reserve_configuration
from postmortem.replay.inputs import ReplayInputs

__all__ = ["ReserveBook", "RiskOverrides", "pool_revision"]


class ReserveBook:
    """Reserve states (indexes, rates, risk parameters) and eMode categories, per pool."""

    def __init__(self, inputs: ReplayInputs, revisions: Mapping[str, Revision]):
        self.revisions = revisions
        self.reserves: dict[str, dict[str, ReserveState]] = defaultdict(dict)
        self.emode: dict[str, dict[int, EModeCategory]] = defaultdict(dict)
        self.ids: dict[str, dict[str, int]] = defaultdict(dict)
        self.decimals: dict[tuple[str, str], int] = {}
        for r in inputs.reserves:
            self.ids[r["pool"]][r["asset"]] = int(r["reserve_id"])
            self.decimals[(r["pool"], r["asset"])] = int(r["decimals"])
        for s in inputs.reserve_states_at_start:
            pool, asset = s["pool"], s["asset"]
            conf = decode_reserve_configuration(int(s["configuration"]))
            self.reserves[pool][asset] = ReserveState(
                asset=asset, id=self.ids[pool][asset], decimals=self.decimals.get((pool, asset), conf.decimals),
                ltv_bps=conf.ltv_bps, liquidation_threshold_bps=conf.liquidation_threshold_bps,
                liquidation_bonus_bps=conf.liquidation_bonus_bps,
                liquidation_protocol_fee_bps=conf.liquidation_protocol_fee_bps,
                liquidity_index_ray=int(s["liquidity_index"]), variable_borrow_index_ray=int(s["variable_borrow_index"]),
                liquidity_rate_ray=int(s["liquidity_rate"]), variable_borrow_rate_ray=int(s["variable_borrow_rate"]),
                last_update_timestamp=int(s["last_update_timestamp"]), emode_category_id=conf.emode_category_id,
                is_active=conf.is_active, is_paused=conf.is_paused,
            )
        for e in inputs.emode_categories:
            self.emode[e["pool"]][int(e["category_id"])] = EModeCategory(
                id=int(e["category_id"]), ltv_bps=int(e["ltv"]), liquidation_threshold_bps=int(e["liquidation_threshold"]),
                liquidation_bonus_bps=int(e["liquidation_bonus"]),
                collateral_bitmap=int(e.get("collateral_bitmap") or 0),
                borrowable_bitmap=int(e.get("borrowable_bitmap") or 0),
            )
        self.version = 0  # bumped on every risk-parameter change (the float screen caches on it)
        self.updates = 0  # bumped on every ReserveDataUpdated

    def category(self, pool: str, category_id: int) -> EModeCategory | None:
        if not category_id:
            return None
        cat = self.emode[pool].get(category_id)
        if cat is None:  # a category the start state did not list: no eMode parameters known
            raise PostmortemError(
                f"eMode category {category_id} of pool {pool} is not in emode_categories; re-ingest the range"
            )
        return cat

    def apply_update(self, pool: str, asset: str, row: Mapping, timestamp: int) -> None:
        """``ReserveDataUpdated``: the indexes and rates written at ``timestamp``."""
        cur = self.reserves[pool].get(asset)
        if cur is None:
            return
        self.updates += 1
        self.reserves[pool][asset] = replace(
            cur, liquidity_index_ray=int(row["liquidity_index"]), variable_borrow_index_ray=int(row["variable_borrow_index"]),
            liquidity_rate_ray=int(row["liquidity_rate"]), variable_borrow_rate_ray=int(row["variable_borrow_rate"]),
            last_update_timestamp=timestamp)

    def apply_config(self, pool: str, asset: str, **changes: int) -> None:
        cur = self.reserves[pool].get(asset)
        if cur is not None:
            self.reserves[pool][asset] = replace(cur, **changes)
            self.version += 1

    def apply_emode_category(self, pool: str, category_id: int, ltv: int, lt: int, bonus: int) -> None:
        cur = self.emode[pool].get(category_id) or EModeCategory(category_id, 0, 0, 0)
        self.emode[pool][category_id] = replace(cur, ltv_bps=ltv, liquidation_threshold_bps=lt, liquidation_bonus_bps=bonus)
        self.version += 1

    def apply_emode_collateral(self, pool: str, asset: str, category_id: int, enabled: bool) -> None:
        cur = self.emode[pool].get(category_id) or EModeCategory(category_id, 0, 0, 0)
        bit = 1 << self.ids[pool][asset]
        bitmap = cur.collateral_bitmap | bit if enabled else cur.collateral_bitmap & ~bit
        self.emode[pool][category_id] = replace(cur, collateral_bitmap=bitmap)
        self.version += 1


class RiskOverrides:
    """Risk parameters set to other values for a what-if (basis points, as the protocol stores them).

    ``reserves[(pool or None, asset)]`` and ``emode[(pool or None, category id)]`` map a parameter
    name (``liquidation_threshold``, ``liquidation_bonus``, ``protocol_fee`` for a reserve;
    ``liquidation_threshold``, ``liquidation_bonus`` for an eMode category) to its value; a ``None``
    pool means every replayed pool. ``liquidation_bonus`` is stored as the protocol does
    (10100 = a 1% bonus). ``close_factor_bps`` replaces the protocol's 50% close factor.
    Overrides hold through the whole window: a configurator event in it does not undo them.
    """

    RESERVE_FIELDS = {"liquidation_threshold": "liquidation_threshold_bps", "liquidation_bonus": "liquidation_bonus_bps",
                      "protocol_fee": "liquidation_protocol_fee_bps"}
    EMODE_FIELDS = {"liquidation_threshold": "liquidation_threshold_bps", "liquidation_bonus": "liquidation_bonus_bps"}

    def __init__(self, reserves: Mapping | None = None, emode: Mapping | None = None,
                 close_factor_bps: int | None = None):
        self.reserves = {k: dict(v) for k, v in (reserves or {}).items()}
        self.emode = {k: dict(v) for k, v in (emode or {}).items()}
        self.close_factor_bps = close_factor_bps

    def __bool__(self) -> bool:
        return bool(self.reserves or self.emode or self.close_factor_bps is not None)

    def key(self) -> tuple:
        return (tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.reserves.items())),
                tuple(sorted((k, tuple(sorted(v.items()))) for k, v in self.emode.items())), self.close_factor_bps)

    def reserve_changes(self, pool: str, asset: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for key in ((None, asset), (pool, asset)):
            for name, value in self.reserves.get(key, {}).items():
                out[self.RESERVE_FIELDS[name]] = value
        return out

    def apply_reserves(self, pool: str, reserves: Mapping[str, ReserveState]) -> dict[str, ReserveState]:
        """``reserves`` (asset -> state) with this pool's overrides applied."""
        out = dict(reserves)
        for asset, state in reserves.items():
            changes = self.reserve_changes(pool, asset)
            if changes:
                out[asset] = replace(state, **changes)
        return out

    def apply_emode(self, pool: str, category: EModeCategory | None) -> EModeCategory | None:
        """``category`` with this pool's overrides applied (``None`` stays ``None``)."""
        if category is None:
            return None
        changes: dict[str, int] = {}
        for key in ((None, category.id), (pool, category.id)):
            for name, value in self.emode.get(key, {}).items():
                changes[self.EMODE_FIELDS[name]] = value
        return replace(category, **changes) if changes else category

    def rule_overrides(self) -> dict[str, int]:
        """Keyword arguments for ``execute_liquidation_call``."""
        return {} if self.close_factor_bps is None else {"partial_close_factor_bps": self.close_factor_bps}


def pool_revision(market: Mapping) -> Revision:
    """The Aave revision whose math replays ``market`` (a ``markets`` row); one sentence when none does."""
    text = str(market.get("aave_revision") or "")
    try:
        return Revision(text)
    except ValueError:
        pass
    try:
        return Revision.from_pool_revision(int(market.get("pool_revision") or 0))
    except ValueError:
        known = ", ".join(r.value for r in Revision)
        raise PostmortemError(
            f"market {market.get('market')} runs Aave revision {text or '?'} (POOL_REVISION "
            f"{market.get('pool_revision')}), whose math replay does not mirror; supported: {known}"
        ) from None

