"""Aave v3 pool revisions and the rules that differ between them.

A :class:`RevisionRules` bundle holds, for one revision, the rounding functions the
protocol uses (named after ``TokenMath`` in v3.5+, whose names describe the role each
rounding plays) and flags for the logic differences. ``generic_logic`` and
``liquidation_logic`` read only this bundle, never the revision itself, so every
difference between revisions is listed here, once.

Sources read:

- v3.0: ``@aave/core-v3`` 1.19.3 (npm; what a locally deployed "v3.0.x" market runs).
- v3.3: aave-v3-origin ``LiquidationLogic.sol`` of the v3.3.0 era (deficit handling with the
  GHO special case, string error codes, ``reservesCount``) and ``GenericLogic.sol`` of the
  same era (``percentMul(avgLT)`` health factor, floored debt value); ``MathUtils`` binomial.
- v3.4: a flattened v3.4 build of aave-v3-origin (``borrower`` naming, custom errors,
  ``SelfLiquidation``, ``rayMul`` balances, ``percentDiv`` for capped collateral) and
  docs/3.4/Aave-v3.4-features.md ("calculateCompoundedInterest ... performs multiplications
  by exp and then divides by SECONDS_PER_YEAR", i.e. the Taylor form). No v3.4
  ``GenericLogic`` file was available: it is taken to be v3.3's without the GHO branch
  (the v3.4 changelog lists no change to it; the v3.5 notes introduce the new rounding).
- v3.6: ``@aave-dao/aave-v3-origin`` 3.6.0 (npm).

v3.5 is deliberately *not* a member: it has the v3.6 rounding (``TokenMath``,
``mulDivCeil``, HF from the weighted LT sum) but the v3.4 eMode rules (reserve LT must be
non-zero to count as collateral, no ``ltvzeroBitmap``), so it is not the same as either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

from . import math_utils, percentage_math, wad_ray_math

IntFn2 = Callable[[int, int], int]
IntFn3 = Callable[[int, int, int], int]


class Revision(str, Enum):
    """An Aave v3 pool revision whose math this package mirrors."""

    V3_0 = "3.0"
    V3_3 = "3.3"
    V3_4 = "3.4"
    V3_6 = "3.6"

    @classmethod
    def from_pool_revision(cls, pool_revision: int) -> "Revision":
        """Map ``Pool.POOL_REVISION()`` to a :class:`Revision`.

        Known values: 1 (``@aave/core-v3`` 1.19.3), 6 (v3.3), 7 (v3.4), 10 (v3.6).
        """
        for rules in _RULES.values():
            if rules.pool_revision == pool_revision:
                return rules.revision
        known = sorted(r.pool_revision for r in _RULES.values())
        raise ValueError(
            f"POOL_REVISION {pool_revision} is not a revision this package mirrors; known: {known}."
        )


@dataclass(frozen=True)
class RevisionRules:
    """Everything that differs between revisions, as functions and flags."""

    revision: Revision
    pool_revision: int

    # --- Balances from scaled balances (aToken / vToken balanceOf and the scaled amounts
    # burned or transferred). Field names follow v3.5+ TokenMath.
    get_a_token_balance: IntFn2
    get_v_token_balance: IntFn2
    get_a_token_burn_scaled_amount: IntFn2
    get_a_token_transfer_scaled_amount: IntFn2
    get_v_token_burn_scaled_amount: IntFn2

    # --- Values in base currency: f(balance, price, assetUnit).
    collateral_value_in_base: IntFn3
    debt_value_in_base: IntFn3

    # --- Interest.
    calculate_compounded_interest: IntFn3

    # --- GenericLogic.
    health_factor_from_weighted_lt_sum: bool
    """True (v3.5+): ``HF = wadDiv(sum(value*LT), totalDebt) / 1e4``.
    False: ``HF = wadDiv(percentMul(totalCollateral, floor(sum(value*LT)/totalCollateral)), totalDebt)``."""
    available_borrows_percent_mul: IntFn2
    collateral_requires_reserve_liquidation_threshold: bool
    """True up to v3.5: a collateral whose *reserve* LT is 0 is skipped (and cannot be liquidated)."""
    emode_by_reserve_category: bool
    """True in v3.0: a reserve belongs to one eMode category (in its configuration);
    False: the category's ``collateralBitmap`` lists its collaterals (v3.2+)."""
    emode_price_source: bool
    """True in v3.0: a category may set a price source that prices all its assets."""
    emode_ltvzero_bitmap: bool
    """True in v3.6: LTV comes from ``ValidationLogic.getUserReserveLtv`` (``ltvzeroBitmap``)."""
    has_stable_debt: bool

    # --- LiquidationLogic.
    close_factor_on_total_debt: bool
    """True (v3.3+): 100% of the reserve debt unless HF > 0.95 and both the collateral and the
    debt reserve are worth >= 2000e8 base, then 50% of *total* debt. False (v3.0): 50% of the
    reserve debt when HF > 0.95, else 100%, both via ``percentMul``."""
    has_min_leftover_rule: bool
    """True (v3.3+): ``MustNotLeaveDust`` when a partial liquidation leaves < 1000e8 base."""
    creates_deficit: bool
    """True (v3.3+): when all collateral is taken, remaining debt is burned as deficit."""
    debt_needed_for_capped_collateral: IntFn2
    """``percentDiv`` (half up) up to v3.4, ``percentDivCeil`` in v3.5+."""
    has_liquidation_grace_period: bool
    forbids_self_liquidation: bool
    pool_passes_scaled_amounts: bool
    """True (v3.5+): the pool computes scaled amounts (TokenMath) and passes them to the tokens,
    e.g. the capped treasury fee is sent as the borrower's whole remaining scaled balance.
    False: tokens re-derive the scaled amount with ``rayDiv(amount, index)``."""


def _rules_v3_0() -> RevisionRules:
    return RevisionRules(
        revision=Revision.V3_0,
        pool_revision=1,
        get_a_token_balance=wad_ray_math.ray_mul,
        get_v_token_balance=wad_ray_math.ray_mul,
        get_a_token_burn_scaled_amount=wad_ray_math.ray_div,
        get_a_token_transfer_scaled_amount=wad_ray_math.ray_div,
        get_v_token_burn_scaled_amount=wad_ray_math.ray_div,
        collateral_value_in_base=math_utils.mul_div_floor,
        debt_value_in_base=math_utils.mul_div_floor,
        calculate_compounded_interest=math_utils.calculate_compounded_interest_binomial,
        health_factor_from_weighted_lt_sum=False,
        available_borrows_percent_mul=percentage_math.percent_mul,
        collateral_requires_reserve_liquidation_threshold=True,
        emode_by_reserve_category=True,
        emode_price_source=True,
        emode_ltvzero_bitmap=False,
        has_stable_debt=True,
        close_factor_on_total_debt=False,
        has_min_leftover_rule=False,
        creates_deficit=False,
        debt_needed_for_capped_collateral=percentage_math.percent_div,
        has_liquidation_grace_period=False,
        forbids_self_liquidation=False,
        pool_passes_scaled_amounts=False,
    )


def _rules_v3_3() -> RevisionRules:
    base = _rules_v3_0()
    return RevisionRules(
        **{
            **base.__dict__,
            "revision": Revision.V3_3,
            "pool_revision": 6,
            "emode_by_reserve_category": False,
            "emode_price_source": False,
            "has_stable_debt": False,
            "close_factor_on_total_debt": True,
            "has_min_leftover_rule": True,
            "creates_deficit": True,
            "has_liquidation_grace_period": True,
        }
    )


def _rules_v3_4() -> RevisionRules:
    base = _rules_v3_3()
    return RevisionRules(
        **{
            **base.__dict__,
            "revision": Revision.V3_4,
            "pool_revision": 7,
            "calculate_compounded_interest": math_utils.calculate_compounded_interest_taylor,
            "forbids_self_liquidation": True,
        }
    )


def _rules_v3_6() -> RevisionRules:
    base = _rules_v3_4()
    return RevisionRules(
        **{
            **base.__dict__,
            "revision": Revision.V3_6,
            "pool_revision": 10,
            "get_a_token_balance": wad_ray_math.ray_mul_floor,
            "get_v_token_balance": wad_ray_math.ray_mul_ceil,
            "get_a_token_burn_scaled_amount": wad_ray_math.ray_div_ceil,
            "get_a_token_transfer_scaled_amount": wad_ray_math.ray_div_ceil,
            "get_v_token_burn_scaled_amount": wad_ray_math.ray_div_floor,
            "debt_value_in_base": math_utils.mul_div_ceil,
            "health_factor_from_weighted_lt_sum": True,
            "available_borrows_percent_mul": percentage_math.percent_mul_floor,
            "collateral_requires_reserve_liquidation_threshold": False,
            "emode_ltvzero_bitmap": True,
            "debt_needed_for_capped_collateral": percentage_math.percent_div_ceil,
            "pool_passes_scaled_amounts": True,
        }
    )


_RULES: dict[Revision, RevisionRules] = {
    rules.revision: rules for rules in (_rules_v3_0(), _rules_v3_3(), _rules_v3_4(), _rules_v3_6())
}


def rules_for(revision: Revision | str) -> RevisionRules:
    """The :class:`RevisionRules` of ``revision`` (a :class:`Revision` or its value, e.g. ``"3.6"``)."""
    try:
        # Revision is a str enum, so "3.6" and Revision.V3_6 hash and compare equal: a plain dict
        # lookup answers both without constructing the enum (this runs several times per valuation).
        return _RULES[revision]
    except (KeyError, TypeError):
        pass
    try:
        return _RULES[Revision(revision)]
    except ValueError:
        known = ", ".join(r.value for r in Revision)
        raise ValueError(f"Unknown Aave revision {revision!r}; use one of: {known}.") from None


def calculate_compounded_interest(
    rate_ray: int, last_update_timestamp: int, current_timestamp: int, revision: Revision | str
) -> int:
    """``MathUtils.calculateCompoundedInterest`` in the form ``revision`` uses (see math_utils)."""
    return rules_for(revision).calculate_compounded_interest(rate_ray, last_update_timestamp, current_timestamp)
