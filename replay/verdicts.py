"""Judging one liquidation: eligibility under both prices, what could have been liquidated,
and how the borrower's loss splits. Pure functions over :mod:`replay.aave_math` inputs.

Verdicts (health factors at the state just before the liquidation):

``wrongly_eligible``  HF < 1 under the reported price and HF >= 1 under the true price;
``eligible_anyway``   HF < 1 under both;
``anomaly``           HF >= 1 even under the reported price: the replay does not explain why the
                      protocol allowed it (a sign of missing inputs, or of a rule not modelled).

Loss split of a liquidation that took ``C`` collateral to the liquidator (``liquidatedCollateralAmount``,
fee excluded) plus a protocol fee ``F``, for ``D`` of debt (``debtToCover``), with collateral prices
``Pr`` (reported) and ``Pt`` (true) and debt prices ``Qr`` / ``Qt``:

- ``oracle_loss      = C * (Pt - Pr)``         collateral handed over at the wrong price;
- ``fee_oracle_loss  = F * (Pt - Pr)``         the same on the protocol's fee;
- ``bonus_loss       = (C + F) * Pr - D * Qr``  the bonus, as the protocol valued it;
- ``borrower_loss    = (C + F) * Pt - D * Qt``  everything the borrower lost, at true prices
  (the sum of the three when the debt asset is priced right, ``Qt == Qr``).

Each is an exact fraction of base units; it is stored floored (toward minus infinity) in three
units: base currency (1e8 = 1 USD), collateral token units at the true collateral price, and ETH
wei at the true ETH price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Mapping

from postmortem.replay.aave_math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    EModeCategory,
    LiquidationResult,
    Revision,
    execute_liquidation_call,
)
from postmortem.replay.aave_math.wad_ray_math import UINT256_MAX

__all__ = [
    "VERDICTS",
    "LossParts",
    "classify",
    "loss_parts",
    "max_liquidatable_debt",
    "to_units",
]

VERDICTS = ("wrongly_eligible", "eligible_anyway", "anomaly")


def classify(hf_reported_wad: int, hf_true_wad: int) -> str:
    """The verdict from the two health factors (wad) before the liquidation."""
    if hf_reported_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return "anomaly"
    if hf_true_wad >= HEALTH_FACTOR_LIQUIDATION_THRESHOLD:
        return "wrongly_eligible"
    return "eligible_anyway"


def max_liquidatable_debt(
    revision: Revision | str,
    positions,
    reserves,
    prices: Mapping[str, int],
    user_emode: EModeCategory | None,
    timestamp: int,
    *,
    collateral_asset: str,
    debt_asset: str,
    receive_a_token: bool = False,
    liquidator_is_borrower: bool = False,
    **rule_overrides,
) -> tuple[int, LiquidationResult]:
    """The most debt one ``liquidationCall`` could repay at these prices, and that call's result.

    Runs the revision's ``executeLiquidationCall`` with ``debtToCover = type(uint256).max``: the
    close factor (and, when the collateral runs out, the collateral cap) decides the amount.
    When that reverts with ``MustNotLeaveDust`` (v3.3+), the largest partial amount that leaves
    enough debt and collateral is found by bisection (the leftover shrinks as the amount grows).
    0 when the position cannot be liquidated at all (e.g. HF >= 1). ``rule_overrides`` go to
    ``execute_liquidation_call`` (a what-if's ``partial_close_factor_bps``).
    """
    def run(amount: int) -> LiquidationResult:
        return execute_liquidation_call(
            revision, positions, reserves, prices, user_emode, timestamp,
            collateral_asset=collateral_asset, debt_asset=debt_asset, debt_to_cover=amount,
            receive_a_token=receive_a_token, liquidator_is_borrower=liquidator_is_borrower, **rule_overrides,
        )

    full = run(UINT256_MAX)
    if not full.reverted:
        return full.actual_debt_to_liquidate, full
    if full.revert_reason != "MustNotLeaveDust":
        return 0, full
    lo, hi = 0, full.max_liquidatable_debt  # dust-free below lo+1 ... hi reverts for dust
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if run(mid).revert_reason == "MustNotLeaveDust":
            hi = mid
        else:
            lo = mid
    best = run(lo) if lo else full
    if lo == 0 or best.reverted:
        return 0, best
    return best.actual_debt_to_liquidate, best


@dataclass(frozen=True)
class LossParts:
    """Exact values in base units (fractions) of one liquidation's loss split."""

    oracle_loss: Fraction
    bonus_loss: Fraction
    fee_oracle_loss: Fraction
    borrower_loss: Fraction
    liquidator_gain: Fraction
    """``C * Pt - D * Qt``: what the liquidator received beyond the debt it repaid, at true prices."""
    liquidator_oracle_gain: Fraction
    """``C * (Pt - Pr)``: the liquidator's part of the underpricing (equals ``oracle_loss``)."""
    liquidator_bonus_gain: Fraction
    """``C * Pr - D * Qr``: the bonus net of the protocol fee, as the protocol valued it."""
    collateral_seized_true: Fraction
    debt_repaid_true: Fraction


def loss_parts(
    liquidated_collateral_amount: int,
    protocol_fee_amount: int,
    debt_to_cover: int,
    collateral_price_reported: int,
    collateral_price_true: int,
    debt_price_reported: int,
    debt_price_true: int,
    collateral_unit: int,
    debt_unit: int,
) -> LossParts:
    """The loss split of one liquidation (see the module docstring), exact."""
    c, f, d = liquidated_collateral_amount, protocol_fee_amount, debt_to_cover
    pr, pt, qr, qt = collateral_price_reported, collateral_price_true, debt_price_reported, debt_price_true
    cu, du = collateral_unit, debt_unit
    return LossParts(
        oracle_loss=Fraction(c * (pt - pr), cu),
        bonus_loss=Fraction((c + f) * pr, cu) - Fraction(d * qr, du),
        fee_oracle_loss=Fraction(f * (pt - pr), cu),
        borrower_loss=Fraction((c + f) * pt, cu) - Fraction(d * qt, du),
        liquidator_gain=Fraction(c * pt, cu) - Fraction(d * qt, du),
        liquidator_oracle_gain=Fraction(c * (pt - pr), cu),
        liquidator_bonus_gain=Fraction(c * pr, cu) - Fraction(d * qr, du),
        collateral_seized_true=Fraction((c + f) * pt, cu),
        debt_repaid_true=Fraction(d * qt, du),
    )


def to_units(value_base: Fraction, *, collateral_unit: int | None = None, collateral_price: int | None = None,
             eth_price: int | None = None) -> tuple[int, int | None, int | None]:
    """``(base, collateral units, ETH wei)`` of an exact base value, each floored.

    Collateral units convert at ``collateral_price`` (``value * unit / price``); ETH wei at
    ``eth_price`` (``value * 1e18 / price``). ``None`` where the price is missing or zero.
    """
    base = math.floor(value_base)
    coll = (math.floor(value_base * collateral_unit / collateral_price)
            if collateral_unit and collateral_price else None)
    eth = math.floor(value_base * 10**18 / eth_price) if eth_price else None
    return base, coll, eth
