"""What a cToken computes: its exchange rate, an account's borrow balance, the reserves an
accrual adds, and how seized cTokens are split between the liquidator and the protocol.

Mirrors ``CToken.sol`` (``exchangeRateStoredInternal``, ``borrowBalanceStoredInternal``,
``accrueInterest``, ``seizeInternal``) and Venus's ``VToken.sol`` where they differ (the variant
says which; see :mod:`postmortem.replay.compound_v2.variants`).
"""

from __future__ import annotations

from postmortem.replay.compound_v2.exp import EXP_SCALE, mul_scalar_truncate, mul_scalar_truncate_add, mul_uint_exp


def exchange_rate_stored(cash: int, total_borrows: int, total_reserves: int, total_supply: int,
                         initial_exchange_rate: int, bad_debt: int = 0) -> int:
    """``exchangeRateStoredInternal``: ``(cash + totalBorrows (+ badDebt) - totalReserves) * 1e18 /
    totalSupply``, truncating; the initial rate while nothing is minted. ``bad_debt`` is Venus
    isolated pools' (zero elsewhere)."""
    if total_supply == 0:
        return initial_exchange_rate
    return (cash + total_borrows + bad_debt - total_reserves) * EXP_SCALE // total_supply


def borrow_balance_stored(principal: int, interest_index: int, borrow_index: int) -> int:
    """``borrowBalanceStoredInternal``: ``principal * borrowIndex / interestIndex`` (0 without principal)."""
    if principal == 0:
        return 0
    return principal * borrow_index // interest_index


def reserves_after_accrual(total_reserves: int, interest_accumulated: int, reserve_factor: int) -> int:
    """``accrueInterest``'s new ``totalReserves``: ``reserveFactor * interestAccumulated + totalReserves``."""
    return mul_scalar_truncate_add(reserve_factor, interest_accumulated, total_reserves)


def seize_split(variant, seize_tokens: int, exchange_rate: int, protocol_seize_share: int,
                liquidation_incentive: int) -> tuple[int, int, int]:
    """(liquidator's cTokens, protocol's cTokens, the protocol's share in underlying) of ``seize_tokens``.

    Compound 2020: everything to the liquidator. Compound >= 2.9 and Moonwell:
    ``protocolSeizeTokens = seizeTokens * protocolSeizeShare`` (truncating), its underlying
    ``exchangeRate * protocolSeizeTokens`` (truncating) added to reserves. Venus isolated pools:
    the share is of the incentive, ``seizeTokens * protocolSeizeShare / liquidationIncentive``.
    """
    if not variant.protocol_seize_share:
        return seize_tokens, 0, 0
    if variant.seize_share_of_incentive:
        protocol = mul_uint_exp(seize_tokens, protocol_seize_share) * EXP_SCALE // liquidation_incentive
    else:
        protocol = mul_uint_exp(seize_tokens, protocol_seize_share)
    return seize_tokens - protocol, protocol, mul_scalar_truncate(exchange_rate, protocol)
