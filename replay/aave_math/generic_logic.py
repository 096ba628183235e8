"""Mirror of Aave v3 ``GenericLogic.calculateUserAccountData`` and what it reads.

Inputs are plain dataclasses a replay engine can fill from events or ``eth_call``:

- :class:`ReserveState`: a reserve's configuration and its last ``ReserveDataUpdated`` state;
- :class:`UserReservePosition`: a user's scaled balances and configuration flags;
- :class:`EModeCategory`: the user's eMode category (or ``None``);
- ``prices``: ``AaveOracle.getAssetPrice`` per asset, in base-currency units (1e8 = 1 USD);
- ``timestamp``: the block timestamp at which the protocol evaluates the position.

:func:`calculate_user_account_data` returns what ``Pool.getUserAccountData`` returns, plus
a per-reserve breakdown. Amounts are token wei, values are base-currency units, the health
factor is a wad. Rounding per revision is described in :mod:`replay.aave_math.revisions`.

Not modelled: v3.3's GHO branch (a reserve without virtual accounting is valued with the
discounted ``GhoVariableDebtToken.balanceOf``); GHO debt in a v3.3 market is valued here
like any other variable debt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, TypeVar, Union

from .math_utils import calculate_linear_interest
from .percentage_math import PERCENTAGE_FACTOR, percent_mul
from .revisions import Revision, RevisionRules, rules_for
from .wad_ray_math import UINT256_MAX, WAD, checked_uint256, ray_mul, wad_div

HEALTH_FACTOR_LIQUIDATION_THRESHOLD = WAD  # ValidationLogic: liquidatable when HF < 1e18


@dataclass(frozen=True)
class ReserveState:
    """One reserve: configuration plus the state of its last ``ReserveDataUpdated`` event.

    ``id`` is the reserve's index in ``Pool.getReservesList()`` (its bit in user and eMode
    bitmaps). Basis-point fields are as in ``ReserveConfiguration``: LT 8250 = 82.5%,
    bonus 10500 = +5%, protocol fee 1000 = 10% of the bonus.
    """

    asset: str
    id: int
    decimals: int
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    liquidation_protocol_fee_bps: int
    liquidity_index_ray: int
    variable_borrow_index_ray: int
    liquidity_rate_ray: int
    variable_borrow_rate_ray: int
    last_update_timestamp: int
    emode_category_id: int = 0
    """v3.0 only: the eMode category in the reserve configuration (bits 168-175)."""
    is_active: bool = True
    is_paused: bool = False
    liquidation_grace_period_until: int = 0
    """v3.1+: ``getLiquidationGracePeriod(asset)``; liquidations revert until it has passed."""

    @property
    def asset_unit(self) -> int:
        """``10 ** decimals``."""
        return 10**self.decimals


@dataclass(frozen=True)
class UserReservePosition:
    """A user's position in one reserve.

    ``using_as_collateral`` and ``borrowing`` are the two bits of the user configuration
    bitmap; the protocol values only flagged reserves, whatever the balances say.
    Stable-debt fields are for v3.0 only (``StableDebtToken.principalBalanceOf``,
    ``getUserStableRate``, ``getUserLastUpdated``).
    """

    asset: str
    scaled_a_token_balance: int = 0
    scaled_variable_debt: int = 0
    using_as_collateral: bool = False
    borrowing: bool = False
    stable_debt_principal: int = 0
    stable_borrow_rate_ray: int = 0
    stable_last_update_timestamp: int = 0


@dataclass(frozen=True)
class EModeCategory:
    """An eMode category as ``Pool.getEModeCategoryData`` and the v3.2+ bitmap getters return it.

    Bitmaps are indexed by reserve ``id``. ``price_source`` (v3.0 only) is the key in
    ``prices`` of the category's price source, or ``None``.
    """

    id: int
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    collateral_bitmap: int = 0
    borrowable_bitmap: int = 0
    ltvzero_bitmap: int = 0
    price_source: str | None = None

    def is_collateral(self, reserve_id: int) -> bool:
        """``EModeConfiguration.isReserveEnabledOnBitmap(collateralBitmap, id)``."""
        return (self.collateral_bitmap >> reserve_id) & 1 == 1

    def is_ltvzero(self, reserve_id: int) -> bool:
        """``EModeConfiguration.isReserveEnabledOnBitmap(ltvzeroBitmap, id)`` (v3.6)."""
        return (self.ltvzero_bitmap >> reserve_id) & 1 == 1


@dataclass(frozen=True)
class ReserveValuation:
    """How one flagged reserve entered the account data."""

    asset: str
    reserve_id: int
    price: int
    normalized_income_ray: int
    normalized_debt_ray: int
    collateral_balance: int
    """aToken balance the protocol used (0 when not flagged as collateral)."""
    counts_as_collateral: bool
    collateral_value_base: int
    ltv_bps: int
    liquidation_threshold_bps: int
    variable_debt_balance: int
    stable_debt_balance: int
    debt_value_base: int

    @property
    def debt_balance(self) -> int:
        """Variable plus stable debt, in token wei."""
        return self.variable_debt_balance + self.stable_debt_balance


@dataclass(frozen=True)
class AccountData:
    """``Pool.getUserAccountData`` plus the intermediate sums and a per-reserve breakdown."""

    total_collateral_base: int
    total_debt_base: int
    available_borrows_base: int
    current_liquidation_threshold_bps: int
    ltv_bps: int
    health_factor_wad: int
    has_zero_ltv_collateral: bool
    weighted_liquidation_threshold_sum: int
    """``sum(collateral_value_base * LT_bps)``, before division (GenericLogic's ``avgLiquidationThreshold``)."""
    reserves: tuple[ReserveValuation, ...] = field(default=())

    @property
    def is_liquidatable(self) -> bool:
        """``healthFactor < HEALTH_FACTOR_LIQUIDATION_THRESHOLD`` (1e18)."""
        return self.health_factor_wad < HEALTH_FACTOR_LIQUIDATION_THRESHOLD

    def as_get_user_account_data(self) -> tuple[int, int, int, int, int, int]:
        """The six values in ``Pool.getUserAccountData`` order, for direct comparison with ``eth_call``."""
        return (
            self.total_collateral_base,
            self.total_debt_base,
            self.available_borrows_base,
            self.current_liquidation_threshold_bps,
            self.ltv_bps,
            self.health_factor_wad,
        )

    def reserve(self, asset: str) -> ReserveValuation:
        """The breakdown of ``asset``; KeyError if it was not flagged."""
        for valuation in self.reserves:
            if valuation.asset == asset:
                return valuation
        raise KeyError(f"{asset} is not flagged as collateral or debt for this user.")


_T = TypeVar("_T", ReserveState, UserReservePosition)
ReservesArg = Union[Mapping[str, ReserveState], Iterable[ReserveState]]
PositionsArg = Union[Mapping[str, UserReservePosition], Iterable[UserReservePosition]]


def by_asset(items: Mapping[str, _T] | Iterable[_T], kind: type[_T]) -> dict[str, _T]:
    """Index reserves or positions by ``asset`` (accepts a mapping or any iterable of ``kind``)."""
    # ``type(x) is dict`` first: isinstance against the typing.Mapping ABC is slow and this runs
    # twice per valuation.
    values = items.values() if type(items) is dict or isinstance(items, Mapping) else items
    indexed: dict[str, _T] = {}
    for item in values:
        if type(item) is not kind and not isinstance(item, kind):
            raise TypeError(
                f"Expected {kind.__name__}, got {type(item).__name__}; the argument order is "
                "(revision, positions, reserves, prices, user_emode, timestamp)."
            )
        if item.asset in indexed:
            raise ValueError(f"{item.asset} appears twice; pass one entry per asset.")
        indexed[item.asset] = item
    return indexed


# --- ReserveLogic views --------------------------------------------------------------


def get_normalized_income(reserve: ReserveState, timestamp: int) -> int:
    """``ReserveLogic.getNormalizedIncome`` (all revisions), in ray.

    The stored liquidity index when ``timestamp`` equals the last update, else
    ``rayMul(calculateLinearInterest(liquidityRate, lastUpdate), liquidityIndex)`` (half up).
    Equal to the ``nextLiquidityIndex`` that ``updateState`` writes at ``timestamp``.
    """
    if timestamp == reserve.last_update_timestamp:
        return reserve.liquidity_index_ray
    factor = calculate_linear_interest(reserve.liquidity_rate_ray, reserve.last_update_timestamp, timestamp)
    return ray_mul(factor, reserve.liquidity_index_ray)


def get_normalized_debt(revision: Revision | str, reserve: ReserveState, timestamp: int) -> int:
    """``ReserveLogic.getNormalizedDebt``, in ray.

    The stored variable borrow index at the last update, else
    ``rayMul(calculateCompoundedInterest(variableBorrowRate, lastUpdate), variableBorrowIndex)``
    with the revision's compounding form.
    """
    rules = rules_for(revision)
    if timestamp == reserve.last_update_timestamp:
        return reserve.variable_borrow_index_ray
    factor = rules.calculate_compounded_interest(
        reserve.variable_borrow_rate_ray, reserve.last_update_timestamp, timestamp
    )
    return ray_mul(factor, reserve.variable_borrow_index_ray)


# --- Token balances -------------------------------------------------------------------


def a_token_balance_of(
    revision: Revision | str, position: UserReservePosition, reserve: ReserveState, timestamp: int
) -> int:
    """``AToken.balanceOf``: scaled balance times normalized income.

    ``rayMul`` (half up) up to v3.4; ``TokenMath.getATokenBalance`` = ``rayMulFloor`` in v3.5+.
    """
    rules = rules_for(revision)
    return rules.get_a_token_balance(position.scaled_a_token_balance, get_normalized_income(reserve, timestamp))


def variable_debt_balance_of(
    revision: Revision | str, position: UserReservePosition, reserve: ReserveState, timestamp: int
) -> int:
    """``VariableDebtToken.balanceOf``: scaled debt times normalized debt.

    ``rayMul`` (half up) up to v3.4; ``TokenMath.getVTokenBalance`` = ``rayMulCeil`` in v3.5+.
    """
    rules = rules_for(revision)
    if position.scaled_variable_debt == 0:
        return 0
    return rules.get_v_token_balance(
        position.scaled_variable_debt, get_normalized_debt(revision, reserve, timestamp)
    )


def stable_debt_balance_of(revision: Revision | str, position: UserReservePosition, timestamp: int) -> int:
    """``StableDebtToken.balanceOf`` (v3.0 only; 0 elsewhere).

    ``rayMul(principal, calculateCompoundedInterest(userStableRate, userLastUpdated))``.
    """
    rules = rules_for(revision)
    if not rules.has_stable_debt or position.stable_debt_principal == 0:
        return 0
    factor = rules.calculate_compounded_interest(
        position.stable_borrow_rate_ray, position.stable_last_update_timestamp, timestamp
    )
    return ray_mul(position.stable_debt_principal, factor)


# --- eMode and per-reserve parameters ----------------------------------------------


def is_in_emode_category(rules: RevisionRules, user_emode: EModeCategory | None, reserve: ReserveState) -> bool:
    """Whether ``reserve`` takes the user's eMode LT / LTV / bonus as collateral.

    v3.0: ``EModeLogic.isInEModeCategory(userCategory, reserve.eModeCategory)``.
    v3.2+: ``userEModeCategory != 0 && isReserveEnabledOnBitmap(collateralBitmap, reserve.id)``.
    """
    if user_emode is None or user_emode.id == 0:
        return False
    if rules.emode_by_reserve_category:
        return reserve.emode_category_id == user_emode.id
    return user_emode.is_collateral(reserve.id)


def get_asset_price(
    rules: RevisionRules, reserve: ReserveState, prices: Mapping[str, int], user_emode: EModeCategory | None
) -> int:
    """The price ``calculateUserAccountData`` uses for ``reserve``.

    ``AaveOracle.getAssetPrice(asset)``; in v3.0 the eMode category's price source replaces
    it for reserves of the user's category when that source reports a non-zero price.
    """
    if (
        rules.emode_price_source
        and user_emode is not None
        and user_emode.id != 0
        and user_emode.price_source is not None
        and reserve.emode_category_id == user_emode.id
    ):
        emode_price = _price(prices, user_emode.price_source)
        if emode_price != 0:
            return emode_price
    return _price(prices, reserve.asset)


def _price(prices: Mapping[str, int], key: str) -> int:
    try:
        return prices[key]
    except KeyError:
        raise KeyError(f"No price for {key}; pass AaveOracle.getAssetPrice({key}) in prices.") from None


def get_user_reserve_ltv(rules: RevisionRules, reserve: ReserveState, user_emode: EModeCategory | None) -> int:
    """The LTV (bps) a collateral contributes to the user's average LTV.

    v3.6 ``ValidationLogic.getUserReserveLtv``: eMode LTV when the reserve is an eMode
    collateral (0 if it is in ``ltvzeroBitmap``), else the reserve LTV. Earlier revisions:
    0 when the reserve LTV is 0, else the eMode LTV when in the category, else the reserve LTV.
    """
    in_emode = is_in_emode_category(rules, user_emode, reserve)
    if rules.emode_ltvzero_bitmap:
        if in_emode:
            assert user_emode is not None
            return 0 if user_emode.is_ltvzero(reserve.id) else user_emode.ltv_bps
        return reserve.ltv_bps
    if reserve.ltv_bps == 0:
        return 0
    return user_emode.ltv_bps if in_emode and user_emode is not None else reserve.ltv_bps


def get_user_reserve_liquidation_threshold(
    rules: RevisionRules, reserve: ReserveState, user_emode: EModeCategory | None
) -> int:
    """The LT (bps) a collateral contributes: the eMode LT when in the category, else the reserve LT."""
    if is_in_emode_category(rules, user_emode, reserve):
        assert user_emode is not None
        return user_emode.liquidation_threshold_bps
    return reserve.liquidation_threshold_bps


def counts_as_collateral(rules: RevisionRules, reserve: ReserveState, position: UserReservePosition) -> bool:
    """Whether a reserve enters the collateral sums.

    The user's collateral flag must be set; up to v3.5 the *reserve* LT must also be
    non-zero (``vars.liquidationThreshold != 0 && isEnabledAsCollateral``).
    """
    if not position.using_as_collateral:
        return False
    return not (rules.collateral_requires_reserve_liquidation_threshold and reserve.liquidation_threshold_bps == 0)


# --- Health factor --------------------------------------------------------------------


def calculate_health_factor(
    revision: Revision | str,
    total_collateral_base: int,
    total_debt_base: int,
    weighted_liquidation_threshold_sum: int,
) -> int:
    """The health factor (wad) from ``calculateUserAccountData``'s sums.

    ``type(uint256).max`` without debt. v3.5+: ``wadDiv(sum(value*LT), totalDebt) / 1e4``
    (``wadDiv`` half up, ``/1e4`` floors). Up to v3.4:
    ``wadDiv(percentMul(totalCollateral, avgLT), totalDebt)`` with
    ``avgLT = floor(sum(value*LT) / totalCollateral)`` and both ops half up.
    """
    rules = rules_for(revision)
    if total_debt_base == 0:
        return UINT256_MAX
    if rules.health_factor_from_weighted_lt_sum:
        return wad_div(weighted_liquidation_threshold_sum, total_debt_base) // PERCENTAGE_FACTOR
    average_lt = (
        weighted_liquidation_threshold_sum // total_collateral_base if total_collateral_base != 0 else 0
    )
    return wad_div(percent_mul(total_collateral_base, average_lt), total_debt_base)


def calculate_available_borrows(
    revision: Revision | str, total_collateral_base: int, total_debt_base: int, ltv_bps: int
) -> int:
    """``GenericLogic.calculateAvailableBorrows``: ``max(0, collateral * ltv - debt)``.

    ``percentMul`` (half up) up to v3.4, ``percentMulFloor`` in v3.5+.
    """
    rules = rules_for(revision)
    available = rules.available_borrows_percent_mul(total_collateral_base, ltv_bps)
    return available - total_debt_base if available > total_debt_base else 0


def calculate_user_account_data(
    revision: Revision | str,
    positions: PositionsArg,
    reserves: ReservesArg,
    prices: Mapping[str, int],
    user_emode: EModeCategory | None,
    timestamp: int,
) -> AccountData:
    """``GenericLogic.calculateUserAccountData`` + ``calculateAvailableBorrows``, i.e. ``getUserAccountData``.

    ``user_emode`` is the user's category (``Pool.getUserEMode``), ``None`` for category 0.
    Only positions with a flag set are valued, as on chain.

    Per flagged reserve: collateral value ``floor(balance * price / unit)``; debt value
    ``floor`` up to v3.4 and ``mulDivCeil`` in v3.5+; balances rounded as
    :func:`a_token_balance_of` / :func:`variable_debt_balance_of` describe.
    """
    rules = rules_for(revision)
    positions_by_asset = by_asset(positions, UserReservePosition)
    reserves_by_asset = by_asset(reserves, ReserveState)

    total_collateral = 0
    total_debt = 0
    weighted_ltv = 0
    weighted_lt = 0
    has_zero_ltv_collateral = False
    valuations: list[ReserveValuation] = []

    for asset, position in positions_by_asset.items():
        if not (position.using_as_collateral or position.borrowing):
            continue
        try:
            reserve = reserves_by_asset[asset]
        except KeyError:
            raise KeyError(f"No ReserveState for {asset}; pass every reserve the user is flagged in.") from None
        price = get_asset_price(rules, reserve, prices, user_emode)
        unit = reserve.asset_unit
        normalized_income = get_normalized_income(reserve, timestamp)
        normalized_debt = get_normalized_debt(rules.revision, reserve, timestamp)

        collateral_balance = 0
        collateral_value = 0
        ltv = 0
        liquidation_threshold = 0
        is_collateral = counts_as_collateral(rules, reserve, position)
        if is_collateral:
            collateral_balance = rules.get_a_token_balance(position.scaled_a_token_balance, normalized_income)
            collateral_value = rules.collateral_value_in_base(collateral_balance, price, unit)
            total_collateral = checked_uint256(total_collateral + collateral_value)
            ltv = get_user_reserve_ltv(rules, reserve, user_emode)
            if ltv == 0:
                has_zero_ltv_collateral = True
            else:
                weighted_ltv = checked_uint256(weighted_ltv + checked_uint256(collateral_value * ltv))
            liquidation_threshold = get_user_reserve_liquidation_threshold(rules, reserve, user_emode)
            weighted_lt = checked_uint256(weighted_lt + checked_uint256(collateral_value * liquidation_threshold))

        variable_debt = 0
        stable_debt = 0
        debt_value = 0
        if position.borrowing:
            variable_debt = (
                rules.get_v_token_balance(position.scaled_variable_debt, normalized_debt)
                if position.scaled_variable_debt != 0
                else 0
            )
            stable_debt = stable_debt_balance_of(rules.revision, position, timestamp)
            debt_value = rules.debt_value_in_base(checked_uint256(variable_debt + stable_debt), price, unit)
            total_debt = checked_uint256(total_debt + debt_value)

        valuations.append(
            ReserveValuation(
                asset=asset,
                reserve_id=reserve.id,
                price=price,
                normalized_income_ray=normalized_income,
                normalized_debt_ray=normalized_debt,
                collateral_balance=collateral_balance,
                counts_as_collateral=is_collateral,
                collateral_value_base=collateral_value,
                ltv_bps=ltv,
                liquidation_threshold_bps=liquidation_threshold,
                variable_debt_balance=variable_debt,
                stable_debt_balance=stable_debt,
                debt_value_base=debt_value,
            )
        )

    health_factor = calculate_health_factor(rules.revision, total_collateral, total_debt, weighted_lt)
    average_ltv = weighted_ltv // total_collateral if total_collateral != 0 else 0
    average_lt = weighted_lt // total_collateral if total_collateral != 0 else 0
    return AccountData(
        total_collateral_base=total_collateral,
        total_debt_base=total_debt,
        available_borrows_base=calculate_available_borrows(rules.revision, total_collateral, total_debt, average_ltv),
        current_liquidation_threshold_bps=average_lt,
        ltv_bps=average_ltv,
        health_factor_wad=health_factor,
        has_zero_ltv_collateral=has_zero_ltv_collateral,
        weighted_liquidation_threshold_sum=weighted_lt,
        reserves=tuple(sorted(valuations, key=lambda v: v.reserve_id)),
    )


def health_factor(
    revision: Revision | str,
    positions: PositionsArg,
    reserves: ReservesArg,
    prices: Mapping[str, int],
    user_emode: EModeCategory | None,
    timestamp: int,
) -> AccountData:
    """Entry point for a replay engine: :func:`calculate_user_account_data` with positions first.

    ``health_factor(...).health_factor_wad`` is what ``getUserAccountData`` reports at ``timestamp``.
    """
    return calculate_user_account_data(revision, positions, reserves, prices, user_emode, timestamp)


# --- Bitmap decoders (for state read with eth_call) -----------------------------------


def decode_user_configuration(data: int) -> dict[int, tuple[bool, bool]]:
    """``Pool.getUserConfiguration(user).data`` -> ``{reserve_id: (borrowing, using_as_collateral)}``.

    Bit ``2*id`` is borrowing, bit ``2*id + 1`` is collateral (``UserConfiguration.getNextFlags``).
    Only reserves with at least one flag set are returned.
    """
    flags: dict[int, tuple[bool, bool]] = {}
    reserve_id = 0
    while data:
        borrowing, collateral = bool(data & 1), bool(data & 2)
        if borrowing or collateral:
            flags[reserve_id] = (borrowing, collateral)
        data >>= 2
        reserve_id += 1
    return flags


@dataclass(frozen=True)
class ReserveConfigurationFields:
    """The fields of ``Pool.getConfiguration(asset).data`` the math uses (same bit layout v3.0-v3.6)."""

    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    decimals: int
    is_active: bool
    is_frozen: bool
    is_paused: bool
    liquidation_protocol_fee_bps: int
    emode_category_id: int
    """Bits 168-175: the reserve's eMode category in v3.0; unused (deprecated) from v3.2 on."""
    debt_ceiling: int


def decode_reserve_configuration(data: int) -> ReserveConfigurationFields:
    """Decode a ``ReserveConfigurationMap`` (``ReserveConfiguration`` bit positions)."""

    def bits(start: int, width: int) -> int:
        return (data >> start) & ((1 << width) - 1)

    return ReserveConfigurationFields(
        ltv_bps=bits(0, 16),
        liquidation_threshold_bps=bits(16, 16),
        liquidation_bonus_bps=bits(32, 16),
        decimals=bits(48, 8),
        is_active=bool(bits(56, 1)),
        is_frozen=bool(bits(57, 1)),
        is_paused=bool(bits(60, 1)),
        liquidation_protocol_fee_bps=bits(152, 16),
        emode_category_id=bits(168, 8),
        debt_ceiling=bits(212, 40),
    )
