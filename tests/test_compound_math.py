"""The Compound v2 lineage's math, checked against numbers worked out by hand.

Every expected value below was computed on paper from the Solidity (ExponentialNoError,
the 2020 Exponential, Comptroller, CToken, Venus's isolated-pool Comptroller); the comments
show the working.
"""

from __future__ import annotations

import pytest

from postmortem.errors import PostmortemError
from postmortem.replay.compound_v2 import variant
from postmortem.replay.compound_v2.comptroller import (
    Holding, account_liquidity, borrow_allowed, liquidate_borrow_allowed, max_close, seize_tokens,
)
from postmortem.replay.compound_v2.ctoken import (
    borrow_balance_stored, exchange_rate_stored, reserves_after_accrual, seize_split,
)
from postmortem.replay.compound_v2.exp import mul_exp, mul_exp3_half_up, mul_exp_half_up

E18 = 10**18
C29 = variant("compound-2.9")
C20 = variant("compound-2020")
VENUS = variant("venus-isolated")

# cDAI-like: 8-decimal cToken over an 18-decimal underlying, exchange rate 0.02 DAI per cToken,
# scaled 1e(18 - 8 + 18) = 1e28, so 2e26. DAI at $1: price 1e(36 - 18) = 1e18.
ER = 2 * 10**26
DAI = 10**18


def _cdai(balance_ctokens: int, borrow: int, price: int = DAI, cf: int = 75 * 10**16, lt: int | None = None):
    return Holding("cdai", balance_ctokens, borrow, ER, price, cf, lt)


def test_products_truncate_or_round_half_up():
    # 3 x 0.5 = 1.5 units of 1e-18: ExponentialNoError truncates to 1, the 2020 mulExp rounds to 2.
    assert mul_exp(3, 5 * 10**17) == 1
    assert mul_exp_half_up(3, 5 * 10**17) == 2
    assert mul_exp_half_up(3, 4 * 10**17) == 1  # 1.2 -> 1
    # mulExp3(a, b, c) = mulExp(mulExp(a, b), c): (3 x 0.5 -> 2) x 0.75 = 1.5 -> 2; truncating gives 0.
    assert mul_exp3_half_up(3, 5 * 10**17, 75 * 10**16) == 2
    assert mul_exp(mul_exp(3, 5 * 10**17), 75 * 10**16) == 0


def test_liquidity_of_a_dai_borrower_by_hand():
    # 5,000 cDAI (5e11 units) x 0.02 = 100 DAI; x 0.75 = $75 of collateral: per-token value
    # 0.75e18 x 2e26 / 1e18 = 1.5e26, x 1e18 / 1e18 = 1.5e26; x 5e11 / 1e18 = 7.5e19.
    # 80 DAI borrowed: 1e18 x 80e18 / 1e18 = 8e19. Shortfall 5e18 = $5.
    h = [_cdai(5 * 10**11, 80 * E18)]
    for v in (C29, C20, VENUS):
        liq = account_liquidity(v, h)
        assert (liq.collateral, liq.borrows, liq.liquidity, liq.shortfall) == (75 * E18, 80 * E18, 0, 5 * E18)
        assert liq.total_collateral == 100 * E18
    # At 70 DAI borrowed the account has $5 of liquidity.
    liq = account_liquidity(C29, [_cdai(5 * 10**11, 70 * E18)])
    assert (liq.liquidity, liq.shortfall) == (5 * E18, 0)


def test_rounding_differs_between_2020_and_later():
    # Collateral factor 0.5 and an exchange rate of 3e-18 (mantissa 3), price 1.0, 1e18 cTokens:
    # 2.9 truncates 0.5 x 3 = 1.5 to 1, so 1 x 1e18 / 1e18 = 1; 2020 rounds 1.5 up to 2 -> 2.
    h = [Holding("c", 10**18, 0, 3, E18, 5 * 10**17)]
    assert account_liquidity(C29, h).collateral == 1
    assert account_liquidity(C20, h).collateral == 2
    # Venus multiplies rate x price first (3 x 1.0 = 3), then the weight: 0.5 x 3 = 1.5 -> 1.
    assert account_liquidity(VENUS, h).collateral == 1
    # And where the order matters: rate 3, price 0.5, weight 1.0: Compound (1.0 x 3) x 0.5 = 1.5 -> 1;
    # Venus 1.0 x (3 x 0.5 -> 1) = 1; with weight 0.9 Compound (0.9 x 3 = 2.7 -> 2) x 0.5 = 1,
    # Venus 0.9 x (3 x 0.5 -> 1) = 0.9 -> 0.
    h = [Holding("c", 10**18, 0, 3, 5 * 10**17, 9 * 10**17)]
    assert account_liquidity(C29, h).collateral == 1
    assert account_liquidity(VENUS, h, purpose="borrow").collateral == 0


def test_venus_weights_after_the_price_and_uses_the_threshold_for_liquidations():
    # cf 0.5, threshold 0.8: $100 of collateral weighs 50 for a borrow and 80 for a liquidation.
    h = [Holding("v", 5 * 10**11, 70 * E18, ER, DAI, 5 * 10**17, 8 * 10**17)]
    assert account_liquidity(VENUS, h, purpose="liquidation").liquidity == 10 * E18
    assert account_liquidity(VENUS, h, purpose="borrow").shortfall == 20 * E18
    # Compound has no threshold: the collateral factor decides both.
    assert account_liquidity(C29, h, purpose="liquidation").shortfall == 20 * E18
    ok, liq = borrow_allowed(VENUS, [Holding("v", 5 * 10**11, 0, ER, DAI, 5 * 10**17, 8 * 10**17)],
                             market="v", borrow_amount=50 * E18)
    assert ok and liq.liquidity == 0 and liq.borrows == 50 * E18
    ok, liq = borrow_allowed(VENUS, [Holding("v", 5 * 10**11, 0, ER, DAI, 5 * 10**17, 8 * 10**17)],
                             market="v", borrow_amount=50 * E18 + 1)
    assert not ok and liq.shortfall == 1


def test_liquidate_borrow_allowed_close_factor_and_shortfall():
    h = [_cdai(5 * 10**11, 80 * E18)]
    assert max_close(5 * 10**17, 80 * E18 + 1) == 40 * E18  # 40.0000000000000000005 truncated
    ok = liquidate_borrow_allowed(C29, h, borrow_balance=80 * E18, repay_amount=40 * E18, close_factor=5 * 10**17)
    assert ok.allowed and ok.reason == "ok"
    too = liquidate_borrow_allowed(C29, h, borrow_balance=80 * E18, repay_amount=40 * E18 + 1, close_factor=5 * 10**17)
    assert not too.allowed and too.reason == "too_much_repay"
    healthy = liquidate_borrow_allowed(C29, [_cdai(5 * 10**11, 75 * E18)], borrow_balance=75 * E18,
                                       repay_amount=1, close_factor=5 * 10**17)
    assert not healthy.allowed and healthy.reason == "insufficient_shortfall"  # exactly at the limit: no shortfall
    zero = liquidate_borrow_allowed(C29, [_cdai(5 * 10**11, 80 * E18, price=0)], borrow_balance=80 * E18,
                                    repay_amount=1, close_factor=5 * 10**17)
    assert zero.reason == "price_error"
    # Venus: total collateral at or under minLiquidatableCollateral ($100 here) goes to liquidateAccount.
    small = liquidate_borrow_allowed(VENUS, [Holding("v", 5 * 10**11, 90 * E18, ER, DAI, 5 * 10**17, 8 * 10**17)],
                                     borrow_balance=90 * E18, repay_amount=1, close_factor=5 * 10**17,
                                     min_liquidatable_collateral=100 * E18)
    assert small.reason == "min_collateral"


def test_the_true_price_can_clear_a_shortfall():
    # DAI reported at $1.30 and true at $1.00: 5,000 cDAI of ETH-like collateral (price 1e18 per
    # unit here, i.e. $1) backing 60 DAI of debt: 60 x 1.3 = 78 > 75 (shortfall), 60 < 75 (solvent).
    coll = Holding("ceth", 5 * 10**11, 0, ER, DAI, 75 * 10**16)
    reported = [coll, Holding("cdai", 0, 60 * E18, ER, 13 * 10**17, 75 * 10**16)]
    true = [coll, Holding("cdai", 0, 60 * E18, ER, DAI, 75 * 10**16)]
    assert account_liquidity(C20, reported).shortfall == 3 * E18
    assert account_liquidity(C20, true).liquidity == 15 * E18


def test_seize_tokens_by_hand():
    # Repay 40 DAI, incentive 1.08, both prices $1, collateral rate 2e26: numerator 1.08e18,
    # denominator 1e18 x 2e26 / 1e18 = 2e26, ratio 1.08e18 x 1e18 / 2e26 = 5.4e9,
    # seize 5.4e9 x 40e18 / 1e18 = 2.16e11 cTokens = 2,160 cDAI = 43.2 DAI.
    for v in (C29, C20, VENUS):
        assert seize_tokens(v, repay_amount=40 * E18, price_borrowed=DAI, price_collateral=DAI,
                            exchange_rate_collateral=ER, liquidation_incentive=108 * 10**16) == 216 * 10**9
    # A rate of 3e26 makes the ratio 3.6e9 exactly; 7 wei repaid seizes 7 x 3.6e9 / 1e18 = 0.
    assert seize_tokens(C29, repay_amount=7, price_borrowed=DAI, price_collateral=DAI,
                        exchange_rate_collateral=3 * 10**26, liquidation_incentive=108 * 10**16) == 0
    # The 2020 products round half up: incentive 1.5e18 x price (1e18 + 1) / 1e18 = 1.5e18 + 1.5:
    # 2.9 truncates to 1.5e18 + 1, 2020 rounds to 1.5e18 + 2; ratio over 1e18 x 1e18 / 1e18 is the
    # same mantissa; x 1e30 repaid / 1e18 -> (1.5e18 + 1) x 1e12 vs (1.5e18 + 2) x 1e12.
    n29 = seize_tokens(C29, repay_amount=10**30, price_borrowed=E18 + 1, price_collateral=E18,
                       exchange_rate_collateral=E18, liquidation_incentive=15 * 10**17)
    n20 = seize_tokens(C20, repay_amount=10**30, price_borrowed=E18 + 1, price_collateral=E18,
                       exchange_rate_collateral=E18, liquidation_incentive=15 * 10**17)
    assert (n29, n20) == (1_500_000_000_000_000_001 * 10**12, 1_500_000_000_000_000_002 * 10**12)


def test_seize_split_per_variant():
    # Compound >= 2.9: 2.8% of 1e18 seized cTokens = 2.8e16 to the protocol, its underlying at
    # rate 2e26: 2.8e16 x 2e26 / 1e18 = 5.6e24.
    assert seize_split(C29, 10**18, ER, 28 * 10**15, 108 * 10**16) == (972 * 10**15, 28 * 10**15, 56 * 10**23)
    assert seize_split(C20, 10**18, ER, 28 * 10**15, 108 * 10**16) == (10**18, 0, 0)
    # Venus isolated pools: 5% share of a 1.1 incentive: 1e18 x 0.05 = 5e16, x 1e18 / 1.1e18 =
    # 45,454,545,454,545,454.54 -> 45,454,545,454,545,454.
    liq, prot, _ = seize_split(VENUS, 10**18, ER, 5 * 10**16, 11 * 10**17)
    assert (liq, prot) == (10**18 - 45_454_545_454_545_454, 45_454_545_454_545_454)


def test_ctoken_rate_balance_and_reserves_by_hand():
    # cash 1,000, borrows 600, reserves 100 (DAI), 75,000 cTokens (8 decimals):
    # 1,500e18 x 1e18 / 7.5e12 = 2e26 (0.02).
    assert exchange_rate_stored(1000 * E18, 600 * E18, 100 * E18, 75_000 * 10**8, 2 * 10**26) == ER
    assert exchange_rate_stored(0, 0, 0, 0, 2 * 10**26) == 2 * 10**26
    # Venus adds bad debt: + 150 DAI -> 1,650e18 / 7.5e12 = 2.2e26.
    assert exchange_rate_stored(1000 * E18, 600 * E18, 100 * E18, 75_000 * 10**8, 0, bad_debt=150 * E18) == 22 * 10**25
    # 100 principal at index 1.0, index now 1.05: 105; 7 wei at 1.0 -> 1.05: 7.35 -> 7.
    assert borrow_balance_stored(100 * E18, E18, 105 * 10**16) == 105 * E18
    assert borrow_balance_stored(7, E18, 105 * 10**16) == 7
    assert borrow_balance_stored(0, 0, E18) == 0
    # reserve factor 0.1 of 33 wei of interest: 3.3 -> 3 added.
    assert reserves_after_accrual(10, 33, 10**17) == 13


def test_unknown_variant_is_one_sentence():
    with pytest.raises(PostmortemError, match="unknown Compound v2 variant 'compound-3'"):
        variant("compound-3")
