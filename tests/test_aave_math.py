"""Tests of replay.aave_math: hand-computed cases at rounding boundaries, per revision,
and property tests of the relations the Solidity libraries guarantee.

Expected values are worked out in the comments next to them (not by calling the code
under test); the end-to-end comparison with the deployed contracts lives elsewhere.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from postmortem.replay.aave_math import (
    MIN_LEFTOVER_BASE,
    EModeCategory,
    ReserveState,
    Revision,
    UserReservePosition,
    calculate_user_account_data,
    decode_reserve_configuration,
    decode_user_configuration,
    execute_liquidation_call,
    get_normalized_debt,
    get_normalized_income,
    health_factor,
    liquidation_loss_split,
    rules_for,
)
from postmortem.replay.aave_math.liquidation_logic import (
    calculate_available_collateral_to_liquidate,
    calculate_max_liquidatable_debt,
)
from postmortem.replay.aave_math.math_utils import (
    SECONDS_PER_YEAR,
    calculate_compounded_interest_binomial,
    calculate_compounded_interest_taylor,
    calculate_linear_interest,
    mul_div_ceil,
    mul_div_floor,
)
from postmortem.replay.aave_math.revisions import calculate_compounded_interest
from postmortem.replay.aave_math.percentage_math import (
    percent_div,
    percent_div_ceil,
    percent_mul,
    percent_mul_ceil,
    percent_mul_floor,
)
from postmortem.replay.aave_math.wad_ray_math import (
    HALF_RAY,
    HALF_WAD,
    RAY,
    UINT256_MAX,
    WAD,
    SolidityRevert,
    ray_div,
    ray_div_ceil,
    ray_div_floor,
    ray_mul,
    ray_mul_ceil,
    ray_mul_floor,
    ray_to_wad,
    wad_div,
    wad_mul,
    wad_to_ray,
)

ALL = list(Revision)
USD = 10**8  # base currency unit on Ethereum markets
T0 = 1_700_000_000

uint256 = st.integers(min_value=0, max_value=UINT256_MAX)
uint128 = st.integers(min_value=0, max_value=2**128 - 1)
index_ray = st.integers(min_value=RAY, max_value=10 * RAY)


# --- WadRayMath -------------------------------------------------------------------------


class TestWadRayMathBoundaries:
    def test_ray_mul_exact_half_rounds_up_only_in_half_up(self):
        # 1 * 0.5 = 0.5 wei
        assert ray_mul(1, HALF_RAY) == 1
        assert ray_mul_floor(1, HALF_RAY) == 0
        assert ray_mul_ceil(1, HALF_RAY) == 1

    def test_ray_mul_just_below_half(self):
        # 1 * (0.5 - 1e-27) = 0.4999.. wei
        assert ray_mul(1, HALF_RAY - 1) == 0
        assert ray_mul_floor(1, HALF_RAY - 1) == 0
        assert ray_mul_ceil(1, HALF_RAY - 1) == 1

    def test_ray_mul_exact_product_has_no_rounding(self):
        # 3 * 1.5 = 4.5 -> half up 5, floor 4, ceil 5; 4 * 1.5 = 6 exactly
        assert (ray_mul(3, 3 * HALF_RAY), ray_mul_floor(3, 3 * HALF_RAY), ray_mul_ceil(3, 3 * HALF_RAY)) == (5, 4, 5)
        assert (ray_mul(4, 3 * HALF_RAY), ray_mul_floor(4, 3 * HALF_RAY), ray_mul_ceil(4, 3 * HALF_RAY)) == (6, 6, 6)

    def test_ray_div_half_up_adds_half_the_divisor(self):
        # 1 / 2 = 0.5 -> 1 ; 1 / 3 = 0.33 -> 0 ; 2 / 3 = 0.67 -> 1
        assert (ray_div(1, 2 * RAY), ray_div_floor(1, 2 * RAY), ray_div_ceil(1, 2 * RAY)) == (1, 0, 1)
        assert (ray_div(1, 3 * RAY), ray_div_floor(1, 3 * RAY), ray_div_ceil(1, 3 * RAY)) == (0, 0, 1)
        assert (ray_div(2, 3 * RAY), ray_div_floor(2, 3 * RAY), ray_div_ceil(2, 3 * RAY)) == (1, 0, 1)

    def test_ray_div_of_odd_divisor(self):
        # 1e27 / 3 = 333..333.33 (27 threes): half up adds 3 // 2 = 1 before flooring -> no change
        threes = int("3" * 27)
        assert ray_div(1, 3) == threes
        assert ray_div_ceil(1, 3) == threes + 1

    def test_wad_mul_and_wad_div_half_up(self):
        assert wad_mul(1, HALF_WAD) == 1
        assert wad_mul(1, HALF_WAD - 1) == 0
        assert wad_div(1, 2 * WAD) == 1  # 0.5 -> 1
        assert wad_div(1, 2 * WAD + 2) == 0  # 0.4999.. -> 0
        assert wad_div(3, 2) == 15 * 10**17  # 1.5 in wad, exact

    def test_ray_to_wad_rounds_half_up_and_wad_to_ray_is_exact(self):
        assert ray_to_wad(1_500_000_000) == 2
        assert ray_to_wad(1_499_999_999) == 1
        assert ray_to_wad(UINT256_MAX) == UINT256_MAX // 10**9  # remainder 129,639,935 < 0.5e9
        assert wad_to_ray(7) == 7 * 10**9

    @pytest.mark.parametrize(
        "call",
        [
            lambda: ray_mul(UINT256_MAX, 2),
            lambda: ray_mul((UINT256_MAX - HALF_RAY) // 2 + 1, 2),
            lambda: ray_mul_floor(2**255, 2),
            lambda: ray_mul_ceil(2**255, 2),
            lambda: ray_div(1, 0),
            lambda: ray_div(UINT256_MAX // RAY + 1, RAY),
            lambda: ray_div_floor(1, 0),
            lambda: ray_div_ceil(UINT256_MAX // RAY + 1, 1),
            lambda: wad_mul(UINT256_MAX, 2),
            lambda: wad_div(1, 0),
            lambda: wad_to_ray(UINT256_MAX // 10**9 + 1),
        ],
    )
    def test_solidity_guards_raise_value_error(self, call):
        with pytest.raises(ValueError):
            call()

    def test_guards_at_the_exact_limit_do_not_raise(self):
        limit = (UINT256_MAX - HALF_RAY) // 2
        assert ray_mul(limit, 2) == (limit * 2 + HALF_RAY) // RAY
        assert ray_mul(UINT256_MAX, 0) == 0
        assert ray_mul_floor(UINT256_MAX, 1) == UINT256_MAX // RAY

    def test_solidity_revert_names_the_failing_function(self):
        with pytest.raises(SolidityRevert) as excinfo:
            ray_div(1, 0)
        assert excinfo.value.reason == "WadRayMath.rayDiv"


# --- PercentageMath ---------------------------------------------------------------------


class TestPercentageMathBoundaries:
    def test_percent_mul_half(self):
        # 1 * 50% = 0.5 -> half up 1, floor 0, ceil 1
        assert (percent_mul(1, 5000), percent_mul_floor(1, 5000), percent_mul_ceil(1, 5000)) == (1, 0, 1)

    def test_percent_mul_either_side_of_half(self):
        # 3 * 16.66% = 0.4998 ; 3 * 16.67% = 0.5001
        assert (percent_mul(3, 1666), percent_mul_ceil(3, 1666)) == (0, 1)
        assert (percent_mul(3, 1667), percent_mul_floor(3, 1667)) == (1, 0)

    def test_percent_div_half_up_and_ceil(self):
        # 1 / 200% = 0.5 -> 1 ; 1 / 300% = 0.33 -> 0 (ceil 1)
        assert (percent_div(1, 20000), percent_div_ceil(1, 20000)) == (1, 1)
        assert (percent_div(1, 30000), percent_div_ceil(1, 30000)) == (0, 1)
        # 1000 / 105% = 952.38 -> 952, ceil 953 (the capped-collateral debt in v3.4 vs v3.6)
        assert (percent_div(1000, 10500), percent_div_ceil(1000, 10500)) == (952, 953)

    def test_zero_percentage(self):
        assert percent_mul(UINT256_MAX, 0) == 0
        with pytest.raises(ValueError):
            percent_div(1, 0)
        with pytest.raises(ValueError):
            percent_div_ceil(1, 0)

    def test_percent_mul_overflow(self):
        with pytest.raises(ValueError):
            percent_mul(UINT256_MAX // 10_000 + 1, 10_000)


# --- MathUtils ------------------------------------------------------------------------


class TestMathUtils:
    def test_mul_div(self):
        assert mul_div_floor(7, 3, 2) == 10  # 10.5
        assert mul_div_ceil(7, 3, 2) == 11
        assert mul_div_ceil(6, 3, 2) == 9  # exact
        with pytest.raises(ValueError):
            mul_div_ceil(1, 1, 0)
        with pytest.raises(ValueError):
            mul_div_floor(2**255, 2, 1)

    def test_linear_interest(self):
        # 5% for a year is exactly 1.05; for one second 5e25 // 31_536_000
        assert calculate_linear_interest(5 * 10**25, T0, T0 + SECONDS_PER_YEAR) == RAY + 5 * 10**25
        assert calculate_linear_interest(5 * 10**25, T0, T0 + 1) == RAY + 1_585_489_599_188_229_325
        assert calculate_linear_interest(5 * 10**25, T0, T0) == RAY

    def test_timestamps_going_backwards_revert(self):
        with pytest.raises(ValueError):
            calculate_linear_interest(1, T0, T0 - 1)
        with pytest.raises(ValueError):
            calculate_compounded_interest_taylor(1, T0, T0 - 1)

    def test_compounded_zero_elapsed_is_ray(self):
        assert calculate_compounded_interest_binomial(10**27, T0, T0) == RAY
        assert calculate_compounded_interest_taylor(10**27, T0, T0) == RAY

    def test_one_second_separates_the_two_forms(self):
        # x = 5e25 // 31_536_000 = 1_585_489_599_188_229_325.
        # Binomial: the (n-1) factor kills the quadratic and cubic terms at n = 1 -> RAY + x.
        # Taylor: RAY + x + rayMul(x, x/2 + rayMul(x, x/6)) adds x^2/2 = 1_256_888_635.
        x = 1_585_489_599_188_229_325
        assert calculate_compounded_interest_binomial(5 * 10**25, T0, T0 + 1) == RAY + x
        assert calculate_compounded_interest_taylor(5 * 10**25, T0, T0 + 1) == RAY + x + 1_256_888_635

    def test_binomial_two_seconds(self):
        # linear: 5e25 * 2 // Y = 3_170_979_198_376_458_650
        # basePowerTwo = rayMul(5e25, 5e25) // Y^2 = 2.5e24 // 9.945e14 = 2_513_777_269
        # secondTerm = 2 * 1 * basePowerTwo / 2 ; thirdTerm has (n-2) = 0
        expected = RAY + 3_170_979_198_376_458_650 + 2_513_777_269
        assert calculate_compounded_interest_binomial(5 * 10**25, T0, T0 + 2) == expected

    def test_one_year_at_100_percent(self):
        # Taylor: 1 + 1 + 1/2 + 1/6 = 8/3 -> 2.666..6 (floors inside rayMul and x/6)
        assert calculate_compounded_interest_taylor(RAY, T0, T0 + SECONDS_PER_YEAR) == 2_666_666_666_666_666_666_666_666_666
        # Binomial: n(n-1)/2 * (r/n)^2 + ... is a hair below 8/3
        binomial = calculate_compounded_interest_binomial(RAY, T0, T0 + SECONDS_PER_YEAR)
        assert 2_666_663_000 * 10**18 < binomial < 2_666_667 * 10**21

    @pytest.mark.parametrize(
        ("revision", "form"),
        [
            (Revision.V3_0, calculate_compounded_interest_binomial),
            (Revision.V3_3, calculate_compounded_interest_binomial),
            (Revision.V3_4, calculate_compounded_interest_taylor),
            (Revision.V3_6, calculate_compounded_interest_taylor),
        ],
    )
    def test_revision_picks_its_form(self, revision, form):
        args = (7 * 10**25, T0, T0 + 12_345)
        assert calculate_compounded_interest(*args, revision) == form(*args)


# --- Revisions ------------------------------------------------------------------------


class TestRevisions:
    def test_lookup_by_value_and_pool_revision(self):
        assert rules_for("3.6").revision is Revision.V3_6
        assert Revision.from_pool_revision(1) is Revision.V3_0
        assert Revision.from_pool_revision(6) is Revision.V3_3
        assert Revision.from_pool_revision(7) is Revision.V3_4
        assert Revision.from_pool_revision(10) is Revision.V3_6

    def test_unknown_revision_is_a_clear_error(self):
        with pytest.raises(ValueError, match="3.0, 3.3, 3.4, 3.6"):
            rules_for("3.5")
        with pytest.raises(ValueError, match="POOL_REVISION 9"):
            Revision.from_pool_revision(9)

    def test_token_rounding_per_revision(self):
        for revision in (Revision.V3_0, Revision.V3_3, Revision.V3_4):
            rules = rules_for(revision)
            assert rules.get_a_token_balance is ray_mul and rules.get_v_token_balance is ray_mul
        rules = rules_for(Revision.V3_6)
        assert rules.get_a_token_balance is ray_mul_floor
        assert rules.get_v_token_balance is ray_mul_ceil
        assert rules.get_v_token_burn_scaled_amount is ray_div_floor
        assert rules.get_a_token_burn_scaled_amount is ray_div_ceil


# --- Fixtures for GenericLogic / LiquidationLogic -------------------------------------


def reserve(asset, reserve_id, decimals, lt, bonus=10_500, ltv=None, fee=1_000, **kwargs):
    """A reserve at index 1.0, updated at T0 (so values at T0 carry no interest)."""
    defaults = dict(
        liquidity_index_ray=RAY,
        variable_borrow_index_ray=RAY,
        liquidity_rate_ray=3 * 10**25,
        variable_borrow_rate_ray=5 * 10**25,
        last_update_timestamp=T0,
    )
    defaults.update(kwargs)
    return ReserveState(
        asset=asset,
        id=reserve_id,
        decimals=decimals,
        ltv_bps=max(lt - 250, 0) if ltv is None else ltv,
        liquidation_threshold_bps=lt,
        liquidation_bonus_bps=bonus,
        liquidation_protocol_fee_bps=fee,
        **defaults,
    )


WETH = reserve("WETH", 0, 18, 8_250)
USDC = reserve("USDC", 1, 6, 7_800, bonus=10_450)
DAI = reserve("DAI", 2, 18, 7_700, bonus=10_400)
RESERVES = [WETH, USDC, DAI]
PRICES = {"WETH": 2_000 * USD, "USDC": USD, "DAI": USD}


def supply(asset, amount):
    return UserReservePosition(asset, scaled_a_token_balance=amount, using_as_collateral=True)


def borrow(asset, amount):
    return UserReservePosition(asset, scaled_variable_debt=amount, borrowing=True)


def weth_usdc(weth, usdc_debt):
    return [supply("WETH", weth), borrow("USDC", usdc_debt)]


# --- ReserveLogic views ---------------------------------------------------------------


class TestNormalizedIndexes:
    def test_income_after_half_a_year(self):
        # 10% APR for half a year: factor 1.05; index 1.2 -> 1.26 exactly
        r = reserve("X", 0, 18, 8000, liquidity_index_ray=12 * RAY // 10, liquidity_rate_ray=10**26)
        assert get_normalized_income(r, T0 + SECONDS_PER_YEAR // 2) == 126 * RAY // 100

    def test_same_timestamp_returns_the_stored_index(self):
        r = reserve("X", 0, 18, 8000, liquidity_index_ray=RAY + 7, variable_borrow_index_ray=RAY + 9)
        assert get_normalized_income(r, T0) == RAY + 7
        for revision in ALL:
            assert get_normalized_debt(revision, r, T0) == RAY + 9

    def test_debt_index_uses_the_revision_form(self):
        r = reserve("X", 0, 18, 8000, variable_borrow_rate_ray=5 * 10**25)
        x = 1_585_489_599_188_229_325  # one second at 5%
        assert get_normalized_debt(Revision.V3_3, r, T0 + 1) == RAY + x
        assert get_normalized_debt(Revision.V3_4, r, T0 + 1) == RAY + x + 1_256_888_635

    def test_before_last_update_is_an_error(self):
        with pytest.raises(ValueError):
            get_normalized_income(reserve("X", 0, 18, 8000), T0 - 1)


# --- GenericLogic ---------------------------------------------------------------------


class TestCalculateUserAccountData:
    @pytest.mark.parametrize("revision", ALL)
    def test_round_numbers_agree_in_every_revision(self, revision):
        # 1 WETH = 2000 USD at LT 82.5%, 1000 USDC debt: HF = 1650 / 1000
        account = health_factor(revision, weth_usdc(WAD, 1_000 * 10**6), RESERVES, PRICES, None, T0)
        assert account.as_get_user_account_data() == (
            2_000 * USD,
            1_000 * USD,
            600 * USD,  # 2000 * 80% - 1000
            8_250,
            8_000,
            165 * 10**16,
        )
        assert not account.is_liquidatable

    def test_average_lt_flooring_is_gone_in_v3_6(self):
        # 1 USD of collateral at LT 80% and 2 USD at LT 85%: sum(value * LT) = 2.5e12,
        # average LT = 2.5e12 / 3e8 = 8333.33 -> 8333.
        # v3.4: HF = wadDiv(percentMul(3e8, 8333), 1e8) = 2.4999e18
        # v3.6: HF = wadDiv(2.5e12, 1e8) / 1e4 = 2.5e18
        a = reserve("A", 0, 8, 8_000)
        b = reserve("B", 1, 8, 8_500)
        d = reserve("D", 2, 8, 8_000)
        positions = [supply("A", 10**8), supply("B", 2 * 10**8), borrow("D", 10**8)]
        prices = {"A": USD, "B": USD, "D": USD}
        old = calculate_user_account_data(Revision.V3_4, positions, [a, b, d], prices, None, T0)
        new = calculate_user_account_data(Revision.V3_6, positions, [a, b, d], prices, None, T0)
        assert old.current_liquidation_threshold_bps == new.current_liquidation_threshold_bps == 8_333
        assert old.health_factor_wad == 24_999 * 10**14
        assert new.health_factor_wad == 25 * 10**17

    def test_dust_debt_is_invisible_before_v3_5_and_one_base_unit_in_v3_6(self):
        # 1 wei of DAI is worth 1e8 / 1e18 base units: floor 0, mulDivCeil 1.
        positions = [supply("WETH", WAD), borrow("DAI", 1)]
        old = health_factor(Revision.V3_4, positions, RESERVES, PRICES, None, T0)
        new = health_factor(Revision.V3_6, positions, RESERVES, PRICES, None, T0)
        assert (old.total_debt_base, old.health_factor_wad) == (0, UINT256_MAX)
        # v3.6: wadDiv(2000e8 * 8250, 1) / 1e4 = 1.65e11 * 1e18
        assert (new.total_debt_base, new.health_factor_wad) == (1, 165 * 10**27)

    def test_balance_rounding_per_revision(self):
        # scaled 1 at index 1.5: aToken half up 2, floor 1; vToken at 1.4: half up 1, ceil 2
        r = reserve("T", 0, 0, 8_000, liquidity_index_ray=15 * RAY // 10, variable_borrow_index_ray=14 * RAY // 10)
        positions = [UserReservePosition("T", 1, 1, True, True)]
        for revision, collateral, debt in ((Revision.V3_4, 2, 1), (Revision.V3_6, 1, 2)):
            valuation = health_factor(revision, positions, [r], {"T": 1}, None, T0).reserve("T")
            assert (valuation.collateral_balance, valuation.variable_debt_balance) == (collateral, debt)

    def test_interest_accrues_to_the_timestamp(self):
        # One year at 3% supply (linear) and 5% borrow (Taylor form in v3.6) from index 1.0
        account = health_factor(Revision.V3_6, weth_usdc(WAD, 1_000 * 10**6), RESERVES, PRICES, None, T0 + SECONDS_PER_YEAR)
        weth, usdc = account.reserve("WETH"), account.reserve("USDC")
        assert weth.normalized_income_ray == 103 * RAY // 100
        assert weth.collateral_balance == 103 * WAD // 100
        # 1 + 0.05 + 0.00125 + 0.0000208333.. (floors)
        assert usdc.normalized_debt_ray == 1_051_270_833_333_333_333_333_333_333
        assert usdc.variable_debt_balance == 1_051_270_834  # rayMulCeil of 1000e6
        assert account.total_debt_base == 105_127_083_400

    def test_unflagged_positions_are_ignored(self):
        positions = [
            UserReservePosition("WETH", scaled_a_token_balance=WAD, using_as_collateral=False),
            UserReservePosition("DAI", scaled_variable_debt=10**18, borrowing=False),
        ]
        for revision in ALL:
            account = health_factor(revision, positions, RESERVES, PRICES, None, T0)
            assert account.as_get_user_account_data() == (0, 0, 0, 0, 0, UINT256_MAX)
            assert account.reserves == ()

    def test_no_debt_gives_max_health_factor(self):
        for revision in ALL:
            account = health_factor(revision, [supply("WETH", WAD)], RESERVES, PRICES, None, T0)
            assert account.health_factor_wad == UINT256_MAX
            assert account.available_borrows_base == 1_600 * USD

    def test_emode_bitmap_v3_3_plus(self):
        # WETH (id 0) is collateral in category 1 (LT 93%, LTV 90%): HF = 2000 * 0.93 / 1000
        category = EModeCategory(id=1, ltv_bps=9_000, liquidation_threshold_bps=9_300, liquidation_bonus_bps=10_100, collateral_bitmap=0b1)
        for revision in (Revision.V3_3, Revision.V3_4, Revision.V3_6):
            account = health_factor(revision, weth_usdc(WAD, 1_000 * 10**6), RESERVES, PRICES, category, T0)
            assert account.health_factor_wad == 186 * 10**16
            assert account.ltv_bps == 9_000
        # v3.0 ignores bitmaps: membership is the reserve's own eMode category
        account = health_factor(Revision.V3_0, weth_usdc(WAD, 1_000 * 10**6), RESERVES, PRICES, category, T0)
        assert account.health_factor_wad == 165 * 10**16

    def test_emode_category_and_price_source_v3_0(self):
        # Category 1 holds WETH and DAI and prices both with "ETH_USD" = 1800 USD.
        weth = reserve("WETH", 0, 18, 8_250, emode_category_id=1)
        dai = reserve("DAI", 2, 18, 7_700, emode_category_id=1)
        category = EModeCategory(id=1, ltv_bps=9_000, liquidation_threshold_bps=9_300, liquidation_bonus_bps=10_100, price_source="ETH_USD")
        prices = {**PRICES, "ETH_USD": 1_800 * USD}
        positions = [supply("WETH", WAD), borrow("DAI", WAD // 2)]
        account = health_factor(Revision.V3_0, positions, [weth, USDC, dai], prices, category, T0)
        # collateral 1800, debt 0.5 * 1800 = 900, LT 93%: HF = 1674 / 900
        assert account.total_collateral_base == 1_800 * USD
        assert account.total_debt_base == 900 * USD
        assert account.health_factor_wad == 186 * 10**16

    def test_stable_debt_v3_0(self):
        # 500 USDC stable at 10% for half a year (binomial compounding) on top of 500 variable
        position = UserReservePosition(
            "USDC", scaled_variable_debt=500 * 10**6, borrowing=True, stable_debt_principal=500 * 10**6,
            stable_borrow_rate_ray=10**26, stable_last_update_timestamp=T0,
        )
        at = T0 + SECONDS_PER_YEAR // 2
        account = health_factor(Revision.V3_0, [supply("WETH", WAD), position], RESERVES, PRICES, None, at)
        usdc = account.reserve("USDC")
        factor = calculate_compounded_interest_binomial(10**26, T0, at)
        assert 1_051_200 * 10**21 < factor < 1_051_300 * 10**21  # (1 + 0.1/n)^(n/2) ~ 1.05127
        assert usdc.stable_debt_balance == ray_mul(500 * 10**6, factor)
        # stable debt does not exist from v3.2 on
        account = health_factor(Revision.V3_6, [supply("WETH", WAD), position], RESERVES, PRICES, None, at)
        assert account.reserve("USDC").stable_debt_balance == 0

    def test_zero_lt_collateral_counts_in_v3_6_emode_only(self):
        # A reserve with LT 0 outside eMode but collateral in category 1 (LT 90%)
        frozen = reserve("FRZ", 3, 18, 0, ltv=0)
        category = EModeCategory(id=1, ltv_bps=8_500, liquidation_threshold_bps=9_000, liquidation_bonus_bps=10_200, collateral_bitmap=1 << 3)
        positions = [supply("FRZ", WAD), borrow("USDC", 900 * 10**6)]
        prices = {**PRICES, "FRZ": 1_000 * USD}
        v34 = health_factor(Revision.V3_4, positions, RESERVES + [frozen], prices, category, T0)
        v36 = health_factor(Revision.V3_6, positions, RESERVES + [frozen], prices, category, T0)
        assert v34.total_collateral_base == 0 and v34.health_factor_wad == 0
        assert v36.total_collateral_base == 1_000 * USD
        assert v36.health_factor_wad == WAD  # 1000 * 0.9 / 900
        assert v36.ltv_bps == 8_500 and not v36.has_zero_ltv_collateral

    def test_ltvzero_bitmap_v3_6(self):
        category = EModeCategory(id=1, ltv_bps=9_000, liquidation_threshold_bps=9_300, liquidation_bonus_bps=10_100, collateral_bitmap=0b1, ltvzero_bitmap=0b1)
        account = health_factor(Revision.V3_6, weth_usdc(WAD, 1_000 * 10**6), RESERVES, PRICES, category, T0)
        assert account.has_zero_ltv_collateral and account.ltv_bps == 0
        assert account.available_borrows_base == 0
        assert account.health_factor_wad == 186 * 10**16  # LT is unaffected

    def test_available_borrows_rounding(self):
        # 3 base units at LTV 50% = 1.5: percentMul 2 (v3.4), percentMulFloor 1 (v3.6)
        t = reserve("T", 0, 0, 6_000, ltv=5_000)
        for revision, expected in ((Revision.V3_4, 2), (Revision.V3_6, 1)):
            account = health_factor(revision, [supply("T", 3)], [t], {"T": 1}, None, T0)
            assert account.available_borrows_base == expected

    def test_missing_inputs_are_clear_errors(self):
        with pytest.raises(KeyError, match="No price for WETH"):
            health_factor(Revision.V3_6, weth_usdc(WAD, 1), RESERVES, {"USDC": USD}, None, T0)
        with pytest.raises(KeyError, match="No ReserveState for USDC"):
            health_factor(Revision.V3_6, weth_usdc(WAD, 1), [WETH], PRICES, None, T0)
        with pytest.raises(TypeError, match="argument order"):
            health_factor(Revision.V3_6, RESERVES, weth_usdc(WAD, 1), PRICES, None, T0)


class TestBitmapDecoders:
    def test_user_configuration(self):
        # reserve 0 collateral, reserve 1 borrowed, reserve 3 both
        data = 0b11_00_01_10
        assert decode_user_configuration(data) == {0: (False, True), 1: (True, False), 3: (True, True)}

    def test_reserve_configuration(self):
        data = 8_000 | 8_250 << 16 | 10_500 << 32 | 18 << 48 | 1 << 56 | 1 << 60 | 1_000 << 152 | 2 << 168
        fields = decode_reserve_configuration(data)
        assert (fields.ltv_bps, fields.liquidation_threshold_bps, fields.liquidation_bonus_bps, fields.decimals) == (8_000, 8_250, 10_500, 18)
        assert fields.is_active and fields.is_paused and not fields.is_frozen
        assert (fields.liquidation_protocol_fee_bps, fields.emode_category_id) == (1_000, 2)


# --- LiquidationLogic -----------------------------------------------------------------


def liquidate(revision, positions, debt_to_cover=UINT256_MAX, collateral="WETH", debt="USDC", reserves=RESERVES, prices=PRICES, emode=None, at=T0, **kwargs):
    return execute_liquidation_call(
        revision, positions, reserves, prices, emode, at,
        collateral_asset=collateral, debt_asset=debt, debt_to_cover=debt_to_cover, **kwargs,
    )


class TestLiquidationCall:
    @pytest.mark.parametrize("revision", ALL)
    def test_half_close_factor(self, revision):
        # 10 WETH (20,000 USD) against 17,000 USDC: HF = 16,500 / 17,000 = 0.9706 > 0.95.
        # v3.0: percentMul(17,000e6, 50%); v3.3+: both reserves >= 2000 USD and the reserve
        # debt > half the total, so half of the total debt: 8,500e8 base -> 8,500e6 USDC.
        # base collateral = 8,500 / 2,000 = 4.25 WETH; seized = 4.25 * 1.05 = 4.4625;
        # bonus part = 4.4625 - 4.4625 / 1.05 = 0.2125; fee = 10% of it = 0.02125 WETH.
        result = liquidate(revision, weth_usdc(10 * WAD, 17_000 * 10**6))
        assert not result.reverted
        assert result.close_factor_bps == 5_000
        assert result.max_liquidatable_debt == 8_500 * 10**6
        assert result.actual_debt_to_liquidate == 8_500 * 10**6
        assert result.liquidated_collateral_amount == 4_441_250 * 10**12
        assert result.liquidation_protocol_fee_amount == result.protocol_fee_transferred == 21_250 * 10**12
        assert result.collateral_seized == 4_462_500 * 10**12
        assert result.deficits == ()
        assert not result.collateral_disabled

    @pytest.mark.parametrize("revision", ALL)
    def test_full_close_factor_below_095(self, revision):
        # 17,500 USDC: HF = 16,500 / 17,500 = 0.943 -> the whole reserve debt
        result = liquidate(revision, weth_usdc(10 * WAD, 17_500 * 10**6))
        assert result.close_factor_bps == 10_000
        assert result.actual_debt_to_liquidate == 17_500 * 10**6
        assert result.liquidated_collateral_amount == 9_143_750 * 10**12  # 9.1875 - 0.04375 fee

    def test_small_positions_are_fully_liquidatable_from_v3_3(self):
        # 0.9 WETH (1,800 USD < 2,000) against 1,530 USDC: HF = 0.9706 > 0.95
        positions = weth_usdc(9 * WAD // 10, 1_530 * 10**6)
        assert liquidate(Revision.V3_0, positions).max_liquidatable_debt == 765 * 10**6
        for revision in (Revision.V3_3, Revision.V3_4, Revision.V3_6):
            assert liquidate(revision, positions).max_liquidatable_debt == 1_530 * 10**6

    def test_must_not_leave_dust_from_v3_3(self):
        # Repaying 17,000 of 17,500 leaves 500 USD of debt < MIN_LEFTOVER_BASE (1,000 USD)
        positions = weth_usdc(10 * WAD, 17_500 * 10**6)
        assert not liquidate(Revision.V3_0, positions, 17_000 * 10**6).reverted
        for revision in (Revision.V3_3, Revision.V3_4, Revision.V3_6):
            result = liquidate(revision, positions, 17_000 * 10**6)
            assert result.reverted and result.revert_reason == "MustNotLeaveDust"
            assert result.leftover_debt_base == 500 * USD < MIN_LEFTOVER_BASE
            # 16,500 repaid leaves exactly 1,000 USD: allowed (>=)
            assert not liquidate(revision, positions, 16_500 * 10**6).reverted

    def test_collateral_capped_and_deficit(self):
        # 1 WETH (2,000 USD) against 2,500 USDC: everything is seized.
        # debt needed = 2,000e6 / 1.05 = 1,904,761,904.76 -> 1,904,761,905 (half up and ceil agree)
        # bonus part = 1e18 - percentDiv(1e18, 10500) = 1e18 - 952,380,952,380,952,381
        # fee = percentMul(47,619,047,619,047,619, 10%) = 4,761,904,761,904,762 (.9 rounds up)
        # deficit (v3.3+) = 2,500e6 - 1,904,761,905 = 595,238,095
        positions = weth_usdc(WAD, 2_500 * 10**6)
        for revision in ALL:
            result = liquidate(revision, positions)
            assert result.available.is_capped_by_balance
            assert result.actual_debt_to_liquidate == 1_904_761_905
            assert result.protocol_fee_transferred == 4_761_904_761_904_762
            assert result.liquidated_collateral_amount == WAD - 4_761_904_761_904_762
            assert result.collateral_disabled
            if revision is Revision.V3_0:
                assert not result.has_no_collateral_left and result.deficits == ()
            else:
                assert result.has_no_collateral_left
                assert [(d.debt_asset, d.amount) for d in result.deficits] == [("USDC", 595_238_095)]
                assert result.debt_scaled_burned == 2_500 * 10**6

    def test_bad_debt_burns_every_other_debt(self):
        positions = [supply("WETH", WAD), borrow("USDC", 2_500 * 10**6), borrow("DAI", 100 * WAD)]
        result = liquidate(Revision.V3_6, positions)
        assert [(d.debt_asset, d.amount) for d in result.deficits] == [("USDC", 595_238_095), ("DAI", 100 * WAD)]
        assert result.total_deficit == 595_238_095 + 100 * WAD

    def test_capped_debt_rounding_v3_4_vs_v3_6(self):
        # Collateral worth 1,000 debt wei: percentDiv(1000, 10500) = 952, percentDivCeil = 953
        args = (USD, 10**18, USD, 10**18, 10**6, 1_000, 10_500, 0)
        assert calculate_available_collateral_to_liquidate(Revision.V3_4, *args).debt_amount_needed == 952
        assert calculate_available_collateral_to_liquidate(Revision.V3_6, *args).debt_amount_needed == 953

    def test_health_factor_not_below_threshold(self):
        for revision in ALL:
            result = liquidate(revision, weth_usdc(10 * WAD, 16_500 * 10**6))  # HF exactly 1
            assert result.reverted and result.revert_reason == "HealthFactorNotBelowThreshold"
            assert result.health_factor_wad == WAD

    def test_validation_errors(self):
        positions = [UserReservePosition("WETH", scaled_a_token_balance=10 * WAD), supply("DAI", 10 * WAD), borrow("USDC", 17_000 * 10**6)]
        assert liquidate(Revision.V3_6, positions).revert_reason == "CollateralCannotBeLiquidated"
        positions = weth_usdc(10 * WAD, 17_000 * 10**6) + [UserReservePosition("DAI", borrowing=True)]
        assert liquidate(Revision.V3_6, positions, debt="DAI").revert_reason == "SpecifiedCurrencyNotBorrowedByUser"
        paused = [reserve("WETH", 0, 18, 8_250, is_paused=True), USDC, DAI]
        assert liquidate(Revision.V3_6, weth_usdc(10 * WAD, 17_000 * 10**6), reserves=paused).revert_reason == "ReservePaused"

    def test_self_liquidation_forbidden_from_v3_4(self):
        positions = weth_usdc(10 * WAD, 17_000 * 10**6)
        for revision in ALL:
            result = liquidate(revision, positions, liquidator_is_borrower=True)
            assert result.reverted == (revision in (Revision.V3_4, Revision.V3_6))

    def test_grace_period_from_v3_3(self):
        graced = [reserve("WETH", 0, 18, 8_250, liquidation_grace_period_until=T0), USDC, DAI]
        positions = weth_usdc(10 * WAD, 17_000 * 10**6)
        assert not liquidate(Revision.V3_0, positions, reserves=graced).reverted
        assert liquidate(Revision.V3_6, positions, reserves=graced).revert_reason == "LiquidationGraceSentinelCheckFailed"
        assert not liquidate(Revision.V3_6, positions, reserves=graced, at=T0 + 1).reverted

    def test_emode_bonus(self):
        category = EModeCategory(id=1, ltv_bps=9_000, liquidation_threshold_bps=9_300, liquidation_bonus_bps=10_100, collateral_bitmap=0b1)
        # 10 WETH vs 18,700 USDC in eMode: HF = 18,600 / 18,700 < 1, bonus 1%
        result = liquidate(Revision.V3_6, weth_usdc(10 * WAD, 18_700 * 10**6), emode=category)
        assert result.liquidation_bonus_bps == 10_100
        # half of 18,700 = 9,350 USDC -> 4.675 WETH base, 4.72175 seized,
        # bonus part 4.72175 - 4.675 = 0.04675, fee 0.004675
        assert result.actual_debt_to_liquidate == 9_350 * 10**6
        assert result.liquidated_collateral_amount == 4_717_075 * 10**12

    def test_protocol_fee_capped_at_remaining_scaled_balance_v3_0(self):
        # Found by search: scaled 3111 at index i gives balance rayMul(3111, i) = 5693.
        # Everything is seized: fee 27, liquidator 5666 -> burns rayDiv(5666, i) = 3097 scaled,
        # 14 scaled left but the fee needs rayDiv(27, i) = 15: the fee becomes rayMul(14, i) = 26.
        i = 1_829_798_114_258_740_434_748_389_389
        tok = reserve("TOK", 0, 2, 8_000, liquidity_index_ray=i)
        positions = [supply("TOK", 3_111), borrow("USDC", 100 * 10**6)]
        result = liquidate(Revision.V3_0, positions, collateral="TOK", reserves=[tok, USDC], prices={"TOK": USD, "USDC": USD})
        assert result.borrower_collateral_balance == 5_693
        assert (result.liquidated_collateral_amount, result.liquidation_protocol_fee_amount) == (5_666, 27)
        assert result.collateral_scaled_to_liquidator == 3_097
        assert (result.protocol_fee_transferred, result.protocol_fee_scaled) == (26, 14)

    def test_protocol_fee_capped_at_remaining_scaled_balance_v3_6(self):
        # balance rayMulFloor(7869, i) = 8205; fee 39, liquidator 8166 -> rayDivCeil = 7832 scaled,
        # 37 left, fee needs rayDivCeil(39, i) = 38: capped to 37 scaled = rayMulFloor(37, i) = 38.
        i = 1_042_740_918_844_984_694_925_744_665
        tok = reserve("TOK", 0, 2, 8_000, liquidity_index_ray=i)
        positions = [supply("TOK", 7_869), borrow("USDC", 200 * 10**6)]
        result = liquidate(Revision.V3_6, positions, collateral="TOK", reserves=[tok, USDC], prices={"TOK": USD, "USDC": USD})
        assert result.borrower_collateral_balance == 8_205
        assert (result.liquidated_collateral_amount, result.liquidation_protocol_fee_amount) == (8_166, 39)
        assert result.collateral_scaled_to_liquidator == 7_832
        assert (result.protocol_fee_transferred, result.protocol_fee_scaled) == (38, 37)

    def test_worthless_collateral_v3_0_reverts_v3_6_writes_off(self):
        # WETH at 1e-8 USD: 1 WETH is worth 1 base unit, so the capped debt needed is
        # percentDiv(floor(1 * 1e18 * 1e6 / (1e8 * 1e18)) = 0) = 0 debt wei.
        prices = {**PRICES, "WETH": 1}
        positions = weth_usdc(WAD, 1_000 * 10**6)
        # v3.0 burns 0 variable debt: ScaledBalanceTokenBase._burnScaled requires a non-zero amount.
        old = liquidate(Revision.V3_0, positions, prices=prices, debt_to_cover=1)
        assert old.reverted and old.revert_reason == "InvalidBurnAmount"
        # v3.6: all collateral (1 base unit == total collateral) goes, the debt becomes deficit.
        new = liquidate(Revision.V3_6, positions, prices=prices, debt_to_cover=1)
        assert not new.reverted and new.actual_debt_to_liquidate == 0
        assert new.liquidated_collateral_amount == WAD - 4_761_904_761_904_762
        assert [(d.debt_asset, d.amount) for d in new.deficits] == [("USDC", 1_000 * 10**6)]

    def test_max_liquidatable_debt_boundaries(self):
        half = 95 * 10**16
        # v3.0: HF exactly 0.95 is "<= threshold" -> 100%
        assert calculate_max_liquidatable_debt(Revision.V3_0, half, 0, 1_001, 0, 0, USD, 10**6) == (1_001, 10_000)
        assert calculate_max_liquidatable_debt(Revision.V3_0, half + 1, 0, 1_001, 0, 0, USD, 10**6) == (501, 5_000)  # 500.5 -> 501
        # v3.3+: reserve collateral just below 2,000 USD -> 100%
        args = (half + 1, 10_000 * USD, 10_000 * 10**6, 10_000 * USD)
        assert calculate_max_liquidatable_debt(Revision.V3_6, *args, 2_000 * USD - 1, USD, 10**6)[1] == 10_000
        assert calculate_max_liquidatable_debt(Revision.V3_6, *args, 2_000 * USD, USD, 10**6) == (5_000 * 10**6, 5_000)


class TestLossSplit:
    def test_split_at_true_price(self):
        # 1.05 WETH to the liquidator and 0.005 to the treasury for 2,000 USDC; WETH truly at 1,900
        split = liquidation_loss_split(105 * 10**16, 5 * 10**15, 2_000 * 10**6, 1_900 * USD, USD, WAD, 10**6)
        assert split.collateral_seized_base == 2_004_500_000 * 10**2  # 1.055 * 1900
        assert split.collateral_to_liquidator_base == 1_995 * USD
        assert split.protocol_fee_base == 950_000_000
        assert split.debt_repaid_base == 2_000 * USD
        assert split.borrower_loss_base == 450_000_000  # 4.5 USD
        assert split.liquidator_gain_base == -5 * USD

    def test_result_loss_split_defaults_to_oracle_prices(self):
        result = liquidate(Revision.V3_6, weth_usdc(10 * WAD, 17_000 * 10**6))
        split = result.loss_split()
        assert split.debt_repaid_base == 8_500 * USD
        assert split.collateral_seized_base == 8_925 * USD  # 4.4625 WETH * 2000
        assert split.liquidator_gain_base == 8_882_500_000_00 - 8_500 * USD  # 4.44125 * 2000 - 8500


# --- Property tests -------------------------------------------------------------------


@settings(max_examples=300)
@given(a=uint128, b=uint128)
def test_ray_mul_floor_half_up_ceil_ordering(a, b):
    floor, half, ceil = ray_mul_floor(a, b), ray_mul(a, b), ray_mul_ceil(a, b)
    assert floor <= half <= ceil <= floor + 1
    assert floor == a * b // RAY
    assert (ceil - floor) == (1 if (a * b) % RAY else 0)


@settings(max_examples=300)
@given(a=uint128, b=st.integers(min_value=1, max_value=2**128))
def test_ray_div_floor_half_up_ceil_ordering(a, b):
    floor, half, ceil = ray_div_floor(a, b), ray_div(a, b), ray_div_ceil(a, b)
    assert floor <= half <= ceil <= floor + 1
    assert floor == a * RAY // b


@settings(max_examples=300)
@given(value=uint128, percentage=st.integers(min_value=0, max_value=100_000))
def test_percent_mul_ordering(value, percentage):
    floor, half, ceil = percent_mul_floor(value, percentage), percent_mul(value, percentage), percent_mul_ceil(value, percentage)
    assert floor <= half <= ceil <= floor + 1


@settings(max_examples=300)
@given(value=uint128, percentage=st.integers(min_value=1, max_value=100_000))
def test_percent_div_ordering(value, percentage):
    exact_floor = value * 10_000 // percentage
    assert exact_floor <= percent_div(value, percentage) <= percent_div_ceil(value, percentage) <= exact_floor + 1


@settings(max_examples=200)
@given(a=st.integers(0, 2**100), b=st.integers(0, 2**100), delta=st.integers(min_value=0, max_value=2**64))
def test_monotonic_in_each_argument(a, b, delta):
    for f in (ray_mul, ray_mul_floor, ray_mul_ceil, wad_mul):
        assert f(a, b) <= f(a + delta, b) and f(a, b) <= f(a, b + delta)
    assume(b > 0)
    for f in (ray_div, ray_div_floor, ray_div_ceil, wad_div):
        assert f(a, b) <= f(a + delta, b)
        assert f(a, b) >= f(a, b + delta)


rate = st.integers(min_value=0, max_value=10 * RAY)  # up to 1000% APR
elapsed = st.integers(min_value=0, max_value=5 * SECONDS_PER_YEAR)


@settings(max_examples=300)
@given(r=rate, dt=elapsed)
def test_compounded_is_at_least_linear(r, dt):
    linear = calculate_linear_interest(r, T0, T0 + dt)
    assert calculate_compounded_interest_binomial(r, T0, T0 + dt) >= linear
    assert calculate_compounded_interest_taylor(r, T0, T0 + dt) >= linear


@settings(max_examples=300)
@given(r=rate, dt=elapsed, extra=st.integers(min_value=0, max_value=SECONDS_PER_YEAR))
def test_interest_monotonic_in_time(r, dt, extra):
    for f in (calculate_linear_interest, calculate_compounded_interest_binomial, calculate_compounded_interest_taylor):
        assert f(r, T0, T0 + dt) <= f(r, T0, T0 + dt + extra)


@settings(max_examples=300)
@given(r=st.integers(min_value=0, max_value=RAY), dt=st.integers(min_value=0, max_value=86_400))
def test_compounding_forms_agree_over_a_day(r, dt):
    # The forms differ by about n * (r/Y)^2 / 2 per unit: below 1e-9 over a day at <= 100% APR.
    difference = calculate_compounded_interest_taylor(r, T0, T0 + dt) - calculate_compounded_interest_binomial(r, T0, T0 + dt)
    assert 0 <= difference < RAY // 10**9


position_amount = st.integers(min_value=0, max_value=10**30)
price = st.integers(min_value=1, max_value=10**14)


@st.composite
def market(draw):
    """Three reserves with random indexes and a user with random balances."""
    reserves = [
        reserve(name, i, decimals, lt, bonus=10_000 + draw(st.integers(min_value=1, max_value=1_500)),
                liquidity_index_ray=draw(index_ray), variable_borrow_index_ray=draw(index_ray),
                liquidity_rate_ray=draw(st.integers(min_value=0, max_value=RAY // 2)),
                variable_borrow_rate_ray=draw(st.integers(min_value=0, max_value=RAY)))
        for i, (name, decimals, lt) in enumerate((("A", 18, draw(st.integers(1, 9_500))), ("B", 6, 8_000), ("C", 8, 7_000)))
    ]
    positions = [
        UserReservePosition(r.asset, draw(position_amount), draw(position_amount), draw(st.booleans()), draw(st.booleans()))
        for r in reserves
    ]
    prices = {r.asset: draw(price) for r in reserves}
    return reserves, positions, prices


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(state=market())
def test_revisions_agree_without_interest_or_emode(state):
    # With no time elapsed and no eMode, v3.0, v3.3 and v3.4 run the same GenericLogic math.
    reserves, positions, prices = state
    results = {
        revision: health_factor(revision, positions, reserves, prices, None, T0).as_get_user_account_data()
        for revision in (Revision.V3_0, Revision.V3_3, Revision.V3_4)
    }
    assert len(set(results.values())) == 1


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(state=market(), dt=st.integers(min_value=0, max_value=SECONDS_PER_YEAR))
def test_v3_6_rounds_in_favour_of_the_protocol(state, dt):
    # Same inputs: v3.6 values collateral no higher and debt no lower than v3.4.
    reserves, positions, prices = state
    old = health_factor(Revision.V3_4, positions, reserves, prices, None, T0 + dt)
    new = health_factor(Revision.V3_6, positions, reserves, prices, None, T0 + dt)
    assert new.total_collateral_base <= old.total_collateral_base
    assert new.total_debt_base >= old.total_debt_base
    for o, n in zip(old.reserves, new.reserves):
        assert o.collateral_balance - 1 <= n.collateral_balance <= o.collateral_balance
        assert o.variable_debt_balance <= n.variable_debt_balance <= o.variable_debt_balance + 1


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    state=market(),
    revision=st.sampled_from(ALL),
    cover=st.integers(min_value=0, max_value=10**31),
    dt=st.integers(min_value=0, max_value=SECONDS_PER_YEAR),
)
def test_liquidation_invariants(state, revision, cover, dt):
    reserves, positions, prices = state
    result = execute_liquidation_call(
        revision, positions, reserves, prices, None, T0 + dt,
        collateral_asset="A", debt_asset="B", debt_to_cover=cover,
    )
    if result.reverted:
        return
    assert result.health_factor_wad < WAD
    assert result.actual_debt_to_liquidate <= min(cover, result.max_liquidatable_debt, result.borrower_reserve_debt)
    assert result.collateral_seized <= result.borrower_collateral_balance
    assert result.liquidation_protocol_fee_amount <= result.available.bonus_collateral
    if result.leftover_debt_base is not None:
        assert result.leftover_debt_base >= MIN_LEFTOVER_BASE and result.leftover_collateral_base >= MIN_LEFTOVER_BASE
    if result.deficits:
        assert rules_for(revision).creates_deficit and result.has_no_collateral_left
