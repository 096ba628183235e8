"""What a Comptroller decides: account liquidity, whether a liquidation or a borrow is allowed,
and how many cTokens a liquidation seizes.

Mirrors ``Comptroller.getHypotheticalAccountLiquidityInternal``, ``liquidateBorrowAllowed``,
``borrowAllowed`` (its liquidity check) and ``liquidateCalculateSeizeTokens`` (Venus isolated
pools: ``_getHypotheticalLiquiditySnapshot`` and the same three), per variant.

Values are the protocol's own: USD scaled by 1e18 (an oracle price is USD x 1e(36 - decimals) per
underlying base unit, so ``price * amount / 1e18`` is USD x 1e18).
"""

from __future__ import annotations

from dataclasses import dataclass

from postmortem.replay.compound_v2.exp import (
    div_exp, get_exp, mul_exp, mul_exp3_half_up, mul_exp_half_up, mul_scalar_truncate, mul_scalar_truncate_add,
)
from postmortem.replay.compound_v2.variants import Variant


class PriceError(Exception):
    """An oracle price of 0: the Comptroller refuses (``PRICE_ERROR``)."""


@dataclass(frozen=True)
class Holding:
    """One market the account entered, as ``getAccountSnapshot`` and ``markets()`` give it."""

    market: str
    ctoken_balance: int
    borrow_balance: int
    exchange_rate: int
    price: int
    collateral_factor: int
    liquidation_threshold: int | None = None   # Venus isolated pools


@dataclass(frozen=True)
class Liquidity:
    collateral: int        # weighted collateral, USD x 1e18
    borrows: int           # borrows plus the hypothetical's effects, USD x 1e18
    total_collateral: int  # unweighted (Venus keeps it; computed for every variant)
    liquidity: int
    shortfall: int


def account_liquidity(v: Variant, holdings: list[Holding], *, purpose: str = "liquidation", modify: str | None = None,
                      redeem_tokens: int = 0, borrow_amount: int = 0) -> Liquidity:
    """``getHypotheticalAccountLiquidityInternal(account, modify, redeemTokens, borrowAmount)``.

    ``purpose`` picks the weight where the variant has two: ``"liquidation"`` (the liquidation
    threshold) or ``"borrow"`` (the collateral factor)."""
    collateral = borrows = total = 0
    for h in holdings:
        if h.price == 0:
            raise PriceError(h.market)
        weight = h.collateral_factor
        if v.liquidation_threshold and purpose == "liquidation":
            weight = h.liquidation_threshold if h.liquidation_threshold is not None else h.collateral_factor
        if v.half_up_products:
            per_token = mul_exp3_half_up(weight, h.exchange_rate, h.price)
            token_price = mul_exp_half_up(h.exchange_rate, h.price)
        elif v.weight_after_price:
            token_price = mul_exp(h.exchange_rate, h.price)
            per_token = mul_exp(weight, token_price)
        else:
            per_token = mul_exp(mul_exp(weight, h.exchange_rate), h.price)
            token_price = mul_exp(h.exchange_rate, h.price)
        collateral = mul_scalar_truncate_add(per_token, h.ctoken_balance, collateral)
        total = mul_scalar_truncate_add(token_price, h.ctoken_balance, total)
        borrows = mul_scalar_truncate_add(h.price, h.borrow_balance, borrows)
        if h.market == modify:
            borrows = mul_scalar_truncate_add(per_token, redeem_tokens, borrows)
            borrows = mul_scalar_truncate_add(h.price, borrow_amount, borrows)
    if collateral > borrows:
        return Liquidity(collateral, borrows, total, collateral - borrows, 0)
    return Liquidity(collateral, borrows, total, 0, borrows - collateral)


def max_close(close_factor: int, borrow_balance: int) -> int:
    """``mul_ScalarTruncate(Exp(closeFactor), borrowBalance)``: the most one liquidation may repay."""
    return mul_scalar_truncate(close_factor, borrow_balance)


@dataclass(frozen=True)
class LiquidationCheck:
    allowed: bool
    reason: str            # "ok", "insufficient_shortfall", "too_much_repay", "min_collateral", "price_error"
    liquidity: Liquidity | None
    max_close: int


def liquidate_borrow_allowed(v: Variant, holdings: list[Holding], *, borrow_balance: int, repay_amount: int,
                             close_factor: int, min_liquidatable_collateral: int = 0) -> LiquidationCheck:
    """``liquidateBorrowAllowed``: a shortfall, and at most ``closeFactor`` of the borrow repaid.

    Venus isolated pools also refuse an account whose total collateral is at or under
    ``minLiquidatableCollateral`` (it must go through ``liquidateAccount``)."""
    cap = max_close(close_factor, borrow_balance)
    try:
        liq = account_liquidity(v, holdings, purpose="liquidation")
    except PriceError:
        return LiquidationCheck(False, "price_error", None, cap)
    if v.min_liquidatable_collateral and liq.total_collateral <= min_liquidatable_collateral:
        return LiquidationCheck(False, "min_collateral", liq, cap)
    if liq.shortfall == 0:
        return LiquidationCheck(False, "insufficient_shortfall", liq, cap)
    if repay_amount > cap:
        return LiquidationCheck(False, "too_much_repay", liq, cap)
    return LiquidationCheck(True, "ok", liq, cap)


def borrow_allowed(v: Variant, holdings: list[Holding], *, market: str, borrow_amount: int) -> tuple[bool, Liquidity]:
    """``borrowAllowed``'s liquidity check: no shortfall after borrowing ``borrow_amount`` of ``market``
    (the collateral factor weighs the collateral)."""
    liq = account_liquidity(v, holdings, purpose="borrow", modify=market, borrow_amount=borrow_amount)
    return liq.shortfall == 0, liq


def seize_tokens(v: Variant, *, repay_amount: int, price_borrowed: int, price_collateral: int,
                 exchange_rate_collateral: int, liquidation_incentive: int) -> int:
    """``liquidateCalculateSeizeTokens``: ``repay * incentive * priceBorrowed / (priceCollateral *
    exchangeRate)`` with the source's rounding (2020: the two products half up)."""
    if price_borrowed == 0 or price_collateral == 0:
        raise PriceError("seize")
    if v.half_up_products:
        numerator = mul_exp_half_up(liquidation_incentive, price_borrowed)
        denominator = mul_exp_half_up(price_collateral, exchange_rate_collateral)
        ratio = get_exp(numerator, denominator)
    else:
        numerator = mul_exp(liquidation_incentive, price_borrowed)
        denominator = mul_exp(price_collateral, exchange_rate_collateral)
        ratio = div_exp(numerator, denominator)
    return mul_scalar_truncate(ratio, repay_amount)
