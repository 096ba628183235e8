"""Mirror of Aave v3 ``LiquidationLogic.executeLiquidationCall`` (amounts only, no storage).

:func:`execute_liquidation_call` takes the pre-state (as for
:func:`~replay.aave_math.generic_logic.calculate_user_account_data`) and
``(collateral asset, debt asset, debtToCover)`` and returns a :class:`LiquidationResult`:
whether the call reverts and why, the close factor, the debt repaid and the collateral
seized as ``LiquidationCall`` logs them, the protocol fee, the dust rule, the deficit
(bad debt) created and the scaled amounts that leave the borrower's balances.

Not modelled: the price-oracle sentinel (pass ``timestamp`` after any grace period),
isolation-mode debt accounting, interest-rate updates, the liquidator's collateral flag,
and GHO-specific paths in v3.3 (discounted ``balanceOf``, ``handleRepayment``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

from .generic_logic import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    AccountData,
    EModeCategory,
    PositionsArg,
    ReservesArg,
    ReserveState,
    UserReservePosition,
    by_asset,
    calculate_user_account_data,
    get_normalized_debt,
    get_normalized_income,
    is_in_emode_category,
    stable_debt_balance_of,
)
from .percentage_math import percent_div, percent_mul
from .revisions import Revision, RevisionRules, rules_for
from .wad_ray_math import SolidityRevert, checked_div, checked_uint256, ray_div

DEFAULT_LIQUIDATION_CLOSE_FACTOR = 5_000  # bps
MAX_LIQUIDATION_CLOSE_FACTOR = 10_000  # bps (v3.0 constant)
CLOSE_FACTOR_HF_THRESHOLD = 95 * 10**16  # 0.95 in wad
MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD = 2_000 * 10**8  # v3.3+, base units (USD 8 decimals)
MIN_LEFTOVER_BASE = MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD // 2  # v3.3+


def _mul(*factors: int) -> int:
    """Solidity ``a * b * c`` with checked arithmetic, evaluated left to right."""
    product = 1
    for factor in factors:
        product = checked_uint256(product * factor)
    return product


def _require(condition: bool, error: str, detail: str = "") -> None:
    if not condition:
        raise SolidityRevert(error, detail)


# --- Pure pieces of the Solidity functions -------------------------------------------


@dataclass(frozen=True)
class AvailableCollateralToLiquidate:
    """Return values (and intermediates) of ``LiquidationLogic._calculateAvailableCollateralToLiquidate``."""

    collateral_amount: int
    """Collateral to the liquidator, fee excluded (``LiquidationCall.liquidatedCollateralAmount``)."""
    debt_amount_needed: int
    liquidation_protocol_fee: int
    collateral_to_liquidate_in_base: int
    """``floor((collateral_amount + fee) * price / unit)``; computed by the contract from v3.3 on."""
    base_collateral: int
    """Collateral worth ``debtToCover`` at oracle prices, before the bonus (floored)."""
    max_collateral_to_liquidate: int
    """``percentMul(base_collateral, bonus)``."""
    bonus_collateral: int
    """``seized - percentDiv(seized, bonus)``: the bonus part of the collateral taken."""
    is_capped_by_balance: bool
    """True when the bonus-inclusive amount exceeded the borrower's balance."""


def calculate_available_collateral_to_liquidate(
    revision: Revision | str,
    collateral_asset_price: int,
    collateral_asset_unit: int,
    debt_asset_price: int,
    debt_asset_unit: int,
    debt_to_cover: int,
    borrower_collateral_balance: int,
    liquidation_bonus_bps: int,
    liquidation_protocol_fee_bps: int,
) -> AvailableCollateralToLiquidate:
    """``LiquidationLogic._calculateAvailableCollateralToLiquidate``.

    ``base = debtPrice * debtToCover * collUnit / (collPrice * debtUnit)`` (floor);
    ``seized = percentMul(base, bonus)`` (half up). When ``seized`` exceeds the balance, the
    balance is seized and the debt is recomputed as
    ``percentDiv(collPrice * balance * debtUnit / (debtPrice * collUnit), bonus)`` -- half up
    up to v3.4, ``percentDivCeil`` in v3.5+. The protocol fee is
    ``percentMul(seized - percentDiv(seized, bonus), feeBps)`` and is taken out of ``seized``.
    """
    rules = rules_for(revision)
    base_collateral = checked_div(
        _mul(debt_asset_price, debt_to_cover, collateral_asset_unit),
        _mul(collateral_asset_price, debt_asset_unit),
    )
    max_collateral = percent_mul(base_collateral, liquidation_bonus_bps)
    capped = max_collateral > borrower_collateral_balance
    if capped:
        seized = borrower_collateral_balance
        collateral_worth_in_debt = checked_div(
            _mul(collateral_asset_price, seized, debt_asset_unit),
            _mul(debt_asset_price, collateral_asset_unit),
        )
        debt_needed = rules.debt_needed_for_capped_collateral(collateral_worth_in_debt, liquidation_bonus_bps)
    else:
        seized = max_collateral
        debt_needed = debt_to_cover
    seized_in_base = checked_div(_mul(seized, collateral_asset_price), collateral_asset_unit)
    fee = 0
    if liquidation_protocol_fee_bps != 0:
        bonus_collateral = checked_uint256(seized - percent_div(seized, liquidation_bonus_bps))
        fee = percent_mul(bonus_collateral, liquidation_protocol_fee_bps)
    else:
        # Not computed on chain without a fee; reported for completeness.
        bonus_collateral = seized - percent_div(seized, liquidation_bonus_bps) if liquidation_bonus_bps else 0
    return AvailableCollateralToLiquidate(
        collateral_amount=checked_uint256(seized - fee),
        debt_amount_needed=debt_needed,
        liquidation_protocol_fee=fee,
        collateral_to_liquidate_in_base=seized_in_base,
        base_collateral=base_collateral,
        max_collateral_to_liquidate=max_collateral,
        bonus_collateral=bonus_collateral,
        is_capped_by_balance=capped,
    )


def calculate_max_liquidatable_debt(
    revision: Revision | str,
    health_factor_wad: int,
    total_debt_base: int,
    borrower_reserve_debt: int,
    borrower_reserve_debt_base: int,
    borrower_reserve_collateral_base: int,
    debt_asset_price: int,
    debt_asset_unit: int,
    partial_close_factor_bps: int = DEFAULT_LIQUIDATION_CLOSE_FACTOR,
) -> tuple[int, int]:
    """The close factor: ``(maxLiquidatableDebt, close_factor_bps)``.

    ``partial_close_factor_bps`` replaces the protocol's 50% where it applies (a what-if; the
    protocol's own constant by default).

    v3.0 (``_calculateDebt``): ``percentMul(reserveDebt, 50%)`` when HF > 0.95, else
    ``percentMul(reserveDebt, 100%)``; the base values are unused.
    v3.3+: the whole reserve debt, unless HF > 0.95 and both the collateral reserve and the
    debt reserve are worth >= ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``; then, if the reserve
    debt is worth more than ``percentMul(totalDebtBase, 50%)``, that half of the *total*
    debt converted back to tokens: ``halfTotalBase * debtUnit / debtPrice`` (floor).
    ``close_factor_bps`` is 10000 or 5000 and describes which branch applied.
    """
    rules = rules_for(revision)
    if not rules.close_factor_on_total_debt:
        close_factor = (
            partial_close_factor_bps
            if health_factor_wad > CLOSE_FACTOR_HF_THRESHOLD
            else MAX_LIQUIDATION_CLOSE_FACTOR
        )
        return percent_mul(borrower_reserve_debt, close_factor), close_factor
    if (
        borrower_reserve_collateral_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and borrower_reserve_debt_base >= MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD
        and health_factor_wad > CLOSE_FACTOR_HF_THRESHOLD
    ):
        half_total_debt_base = percent_mul(total_debt_base, partial_close_factor_bps)
        if borrower_reserve_debt_base > half_total_debt_base:
            return (
                checked_div(_mul(half_total_debt_base, debt_asset_unit), debt_asset_price),
                partial_close_factor_bps,
            )
    return borrower_reserve_debt, MAX_LIQUIDATION_CLOSE_FACTOR


def calculate_leftover_values(
    revision: Revision | str,
    borrower_reserve_debt: int,
    actual_debt_to_liquidate: int,
    borrower_collateral_balance: int,
    collateral_taken: int,
    debt_asset_price: int,
    debt_asset_unit: int,
    collateral_asset_price: int,
    collateral_asset_unit: int,
) -> tuple[int, int]:
    """``(leftover debt base, leftover collateral base)`` as the v3.3+ dust rule values them.

    ``collateral_taken`` is the seized amount *including* the protocol fee. Debt leftover is
    floored up to v3.4 and ``mulDivCeil`` in v3.5+; collateral leftover is floored.
    """
    rules = rules_for(revision)
    leftover_debt_base = rules.debt_value_in_base(
        checked_uint256(borrower_reserve_debt - actual_debt_to_liquidate), debt_asset_price, debt_asset_unit
    )
    leftover_collateral_base = checked_div(
        _mul(checked_uint256(borrower_collateral_balance - collateral_taken), collateral_asset_price),
        collateral_asset_unit,
    )
    return leftover_debt_base, leftover_collateral_base


def get_liquidation_bonus(
    revision: Revision | str, collateral_reserve: ReserveState, user_emode: EModeCategory | None
) -> int:
    """The bonus (bps, 10500 = +5%): the eMode category's when the collateral is in it, else the reserve's."""
    rules = rules_for(revision)
    if is_in_emode_category(rules, user_emode, collateral_reserve):
        assert user_emode is not None
        return user_emode.liquidation_bonus_bps
    return collateral_reserve.liquidation_bonus_bps


def get_liquidation_prices(
    rules: RevisionRules,
    collateral_reserve: ReserveState,
    debt_reserve: ReserveState,
    prices: Mapping[str, int],
    user_emode: EModeCategory | None,
) -> tuple[int, int]:
    """``(collateral price, debt price)`` used by ``_calculateAvailableCollateralToLiquidate``.

    v3.0 ``_getConfigurationData``: with a user eMode whose category has a price source, the
    debt is always priced by that source, the collateral only when it is in the category.
    v3.2+: ``AaveOracle.getAssetPrice`` for both.
    """
    collateral_key, debt_key = collateral_reserve.asset, debt_reserve.asset
    if rules.emode_price_source and user_emode is not None and user_emode.id != 0 and user_emode.price_source:
        if is_in_emode_category(rules, user_emode, collateral_reserve):
            collateral_key = user_emode.price_source
        debt_key = user_emode.price_source
    try:
        return prices[collateral_key], prices[debt_key]
    except KeyError as missing:
        raise KeyError(f"No price for {missing.args[0]}; pass AaveOracle.getAssetPrice for it in prices.") from None


# --- Results --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeficitCreated:
    """A ``DeficitCreated(user, debtAsset, amountCreated)`` event (v3.3+)."""

    debt_asset: str
    amount: int
    scaled_debt_burned: int
    """Scaled variable debt burned in that reserve by the liquidation (repaid part included)."""


@dataclass(frozen=True)
class LossSplit:
    """Who gained what in a liquidation, valued at one pair of prices (base units, floored).

    Each figure is ``floor(amount * price / unit)`` of its own amount, so the parts may
    differ from the whole by a base unit.
    """

    collateral_seized_base: int
    """Everything taken from the borrower: collateral to the liquidator plus the protocol fee."""
    collateral_to_liquidator_base: int
    protocol_fee_base: int
    debt_repaid_base: int
    borrower_loss_base: int
    """``collateral_seized_base - debt_repaid_base``: what the borrower lost beyond the debt cleared."""
    liquidator_gain_base: int
    """``collateral_to_liquidator_base - debt_repaid_base``."""


def liquidation_loss_split(
    liquidated_collateral_amount: int,
    protocol_fee_amount: int,
    debt_repaid: int,
    collateral_price: int,
    debt_price: int,
    collateral_asset_unit: int,
    debt_asset_unit: int,
) -> LossSplit:
    """Value a liquidation's transfers at ``collateral_price`` / ``debt_price`` (e.g. the true prices).

    ``liquidated_collateral_amount`` and ``debt_repaid`` are the ``LiquidationCall`` fields;
    ``protocol_fee_amount`` is the aToken amount sent to the treasury. Units are ``10**decimals``.
    """
    collateral_unit, debt_unit = collateral_asset_unit, debt_asset_unit
    seized = (liquidated_collateral_amount + protocol_fee_amount) * collateral_price // collateral_unit
    to_liquidator = liquidated_collateral_amount * collateral_price // collateral_unit
    fee = protocol_fee_amount * collateral_price // collateral_unit
    repaid = debt_repaid * debt_price // debt_unit
    return LossSplit(
        collateral_seized_base=seized,
        collateral_to_liquidator_base=to_liquidator,
        protocol_fee_base=fee,
        debt_repaid_base=repaid,
        borrower_loss_base=seized - repaid,
        liquidator_gain_base=to_liquidator - repaid,
    )


@dataclass(frozen=True)
class LiquidationResult:
    """What ``liquidationCall`` does to the borrower, or where it reverts.

    Fields after the failing step keep their defaults when ``reverted`` is True.
    """

    revision: Revision
    collateral_asset: str
    debt_asset: str
    debt_to_cover_requested: int
    reverted: bool = False
    revert_reason: str | None = None
    """A custom error name (v3.4+ spelling, e.g. ``"MustNotLeaveDust"``) or a ``Panic(..)`` code."""
    account: AccountData | None = None
    """``calculateUserAccountData`` before the liquidation."""
    health_factor_wad: int = 0
    collateral_asset_price: int = 0
    debt_asset_price: int = 0
    collateral_asset_unit: int = 0
    debt_asset_unit: int = 0
    liquidation_bonus_bps: int = 0
    borrower_collateral_balance: int = 0
    borrower_reserve_debt: int = 0
    """Variable plus (v3.0) stable debt in the debt reserve, in token wei."""
    borrower_variable_debt: int = 0
    borrower_reserve_debt_base: int = 0
    """v3.3+: value of the reserve debt (floor up to v3.4, ceil in v3.5+)."""
    borrower_reserve_collateral_base: int = 0
    """v3.3+: value of the collateral reserve balance (floor)."""
    max_liquidatable_debt: int = 0
    close_factor_bps: int = 0
    actual_debt_to_liquidate: int = 0
    """``LiquidationCall.debtToCover``: debt the liquidator repays."""
    liquidated_collateral_amount: int = 0
    """``LiquidationCall.liquidatedCollateralAmount``: collateral to the liquidator, fee excluded."""
    liquidation_protocol_fee_amount: int = 0
    """Fee from ``_calculateAvailableCollateralToLiquidate`` (used by the dust rule)."""
    protocol_fee_transferred: int = 0
    """Fee actually sent to the treasury (capped at the borrower's remaining scaled balance)."""
    available: AvailableCollateralToLiquidate | None = None
    leftover_debt_base: int | None = None
    """v3.3+, only when the dust rule was evaluated (partial liquidation)."""
    leftover_collateral_base: int | None = None
    has_no_collateral_left: bool = False
    collateral_disabled: bool = False
    """``ReserveUsedAsCollateralDisabled`` for the collateral reserve (all of it was taken)."""
    debt_scaled_burned: int = 0
    stable_debt_burned: int = 0
    collateral_scaled_to_liquidator: int = 0
    protocol_fee_scaled: int = 0
    deficits: tuple[DeficitCreated, ...] = field(default=())

    @property
    def collateral_seized(self) -> int:
        """Collateral leaving the borrower: to the liquidator plus the fee to the treasury."""
        return self.liquidated_collateral_amount + self.protocol_fee_transferred

    @property
    def total_deficit(self) -> int:
        return sum(deficit.amount for deficit in self.deficits)

    def loss_split(self, collateral_price: int | None = None, debt_price: int | None = None) -> LossSplit:
        """:func:`liquidation_loss_split` of this liquidation; oracle prices unless others are given."""
        return liquidation_loss_split(
            self.liquidated_collateral_amount,
            self.protocol_fee_transferred,
            self.actual_debt_to_liquidate,
            self.collateral_asset_price if collateral_price is None else collateral_price,
            self.debt_asset_price if debt_price is None else debt_price,
            self.collateral_asset_unit,
            self.debt_asset_unit,
        )


# --- executeLiquidationCall -----------------------------------------------------------


def execute_liquidation_call(
    revision: Revision | str,
    positions: PositionsArg,
    reserves: ReservesArg,
    prices: Mapping[str, int],
    user_emode: EModeCategory | None,
    timestamp: int,
    *,
    collateral_asset: str,
    debt_asset: str,
    debt_to_cover: int,
    receive_a_token: bool = False,
    liquidator_is_borrower: bool = False,
    partial_close_factor_bps: int = DEFAULT_LIQUIDATION_CLOSE_FACTOR,
) -> LiquidationResult:
    """``LiquidationLogic.executeLiquidationCall`` on the borrower's pre-state at ``timestamp``.

    ``partial_close_factor_bps`` replaces the protocol's 50% close factor (what-if only).

    Never raises for a protocol revert: ``reverted`` and ``revert_reason`` say what the
    contract would do. Raises ``KeyError`` for missing inputs (reserve, price).
    """
    rules = rules_for(revision)
    result = LiquidationResult(
        revision=rules.revision,
        collateral_asset=collateral_asset,
        debt_asset=debt_asset,
        debt_to_cover_requested=debt_to_cover,
    )
    trace: dict = {}
    try:
        _execute(
            rules,
            trace,
            by_asset(positions, UserReservePosition),
            by_asset(reserves, ReserveState),
            prices,
            user_emode,
            timestamp,
            collateral_asset,
            debt_asset,
            debt_to_cover,
            receive_a_token,
            liquidator_is_borrower,
            partial_close_factor_bps,
        )
    except SolidityRevert as revert:
        return replace(result, reverted=True, revert_reason=revert.reason, **trace)
    return replace(result, **trace)


def _execute(
    rules: RevisionRules,
    trace: dict,
    positions: dict[str, UserReservePosition],
    reserves: dict[str, ReserveState],
    prices: Mapping[str, int],
    user_emode: EModeCategory | None,
    timestamp: int,
    collateral_asset: str,
    debt_asset: str,
    debt_to_cover: int,
    receive_a_token: bool,
    liquidator_is_borrower: bool,
    partial_close_factor_bps: int = DEFAULT_LIQUIDATION_CLOSE_FACTOR,
) -> None:
    """The body of ``executeLiquidationCall``; records every computed value in ``trace``."""
    collateral_reserve = _reserve(reserves, collateral_asset)
    debt_reserve = _reserve(reserves, debt_asset)
    collateral_position = positions.get(collateral_asset, UserReservePosition(asset=collateral_asset))
    debt_position = positions.get(debt_asset, UserReservePosition(asset=debt_asset))

    account = calculate_user_account_data(rules.revision, positions, reserves, prices, user_emode, timestamp)
    trace.update(account=account, health_factor_wad=account.health_factor_wad)

    liquidity_index = get_normalized_income(collateral_reserve, timestamp)
    borrow_index = get_normalized_debt(rules.revision, debt_reserve, timestamp)
    collateral_balance = rules.get_a_token_balance(collateral_position.scaled_a_token_balance, liquidity_index)
    variable_debt = rules.get_v_token_balance(debt_position.scaled_variable_debt, borrow_index)
    stable_debt = stable_debt_balance_of(rules.revision, debt_position, timestamp)
    reserve_debt = checked_uint256(variable_debt + stable_debt)
    trace.update(
        borrower_collateral_balance=collateral_balance,
        borrower_variable_debt=variable_debt,
        borrower_reserve_debt=reserve_debt,
    )

    _validate_liquidation_call(
        rules, collateral_reserve, debt_reserve, collateral_position, account, reserve_debt,
        timestamp, liquidator_is_borrower,
    )

    bonus = get_liquidation_bonus(rules.revision, collateral_reserve, user_emode)
    collateral_price, debt_price = get_liquidation_prices(rules, collateral_reserve, debt_reserve, prices, user_emode)
    collateral_unit, debt_unit = collateral_reserve.asset_unit, debt_reserve.asset_unit
    trace.update(
        liquidation_bonus_bps=bonus,
        collateral_asset_price=collateral_price,
        debt_asset_price=debt_price,
        collateral_asset_unit=collateral_unit,
        debt_asset_unit=debt_unit,
    )

    reserve_debt_base = reserve_collateral_base = 0
    if rules.close_factor_on_total_debt:
        reserve_debt_base = rules.debt_value_in_base(reserve_debt, debt_price, debt_unit)
        reserve_collateral_base = checked_div(_mul(collateral_balance, collateral_price), collateral_unit)
    max_debt, close_factor = calculate_max_liquidatable_debt(
        rules.revision, account.health_factor_wad, account.total_debt_base, reserve_debt,
        reserve_debt_base, reserve_collateral_base, debt_price, debt_unit, partial_close_factor_bps,
    )
    actual_debt = min(debt_to_cover, max_debt)
    trace.update(
        borrower_reserve_debt_base=reserve_debt_base,
        borrower_reserve_collateral_base=reserve_collateral_base,
        max_liquidatable_debt=max_debt,
        close_factor_bps=close_factor,
    )

    available = calculate_available_collateral_to_liquidate(
        rules.revision, collateral_price, collateral_unit, debt_price, debt_unit, actual_debt,
        collateral_balance, bonus, collateral_reserve.liquidation_protocol_fee_bps,
    )
    actual_debt = available.debt_amount_needed
    collateral_amount = available.collateral_amount
    fee = available.liquidation_protocol_fee
    trace.update(
        available=available,
        actual_debt_to_liquidate=actual_debt,
        liquidated_collateral_amount=collateral_amount,
        liquidation_protocol_fee_amount=fee,
    )

    collateral_taken = collateral_amount + fee
    if rules.has_min_leftover_rule and actual_debt < reserve_debt and collateral_taken < collateral_balance:
        leftover_debt_base, leftover_collateral_base = calculate_leftover_values(
            rules.revision, reserve_debt, actual_debt, collateral_balance, collateral_taken,
            debt_price, debt_unit, collateral_price, collateral_unit,
        )
        trace.update(leftover_debt_base=leftover_debt_base, leftover_collateral_base=leftover_collateral_base)
        _require(
            leftover_debt_base >= MIN_LEFTOVER_BASE and leftover_collateral_base >= MIN_LEFTOVER_BASE,
            "MustNotLeaveDust",
            f"leftover debt {leftover_debt_base} / collateral {leftover_collateral_base} base, "
            f"minimum {MIN_LEFTOVER_BASE}",
        )
    trace.update(collateral_disabled=collateral_taken == collateral_balance)

    has_no_collateral_left = (
        rules.creates_deficit and account.total_collateral_base == available.collateral_to_liquidate_in_base
    )
    trace.update(has_no_collateral_left=has_no_collateral_left)

    deficits: list[DeficitCreated] = []
    if rules.creates_deficit:
        debt_scaled_burned = _burn_debt_tokens(
            rules, debt_position, reserve_debt, actual_debt, has_no_collateral_left, borrow_index
        )
        outstanding = reserve_debt - actual_debt
        if has_no_collateral_left and outstanding != 0:
            deficits.append(DeficitCreated(debt_asset, outstanding, debt_scaled_burned))
        trace.update(debt_scaled_burned=debt_scaled_burned)
    else:
        debt_scaled_burned, stable_burned = _burn_debt_tokens_v3_0(debt_position, variable_debt, actual_debt, borrow_index)
        trace.update(debt_scaled_burned=debt_scaled_burned, stable_debt_burned=stable_burned)

    remaining_scaled = _remove_collateral(
        rules, trace, collateral_position, collateral_amount, liquidity_index, receive_a_token
    )
    _transfer_protocol_fee(rules, trace, fee, remaining_scaled, liquidity_index)

    if has_no_collateral_left:
        deficits.extend(_burn_bad_debt(rules, positions, reserves, debt_asset, timestamp))
    trace.update(deficits=tuple(deficits))


def _reserve(reserves: Mapping[str, ReserveState], asset: str) -> ReserveState:
    try:
        return reserves[asset]
    except KeyError:
        raise KeyError(f"No ReserveState for {asset}.") from None


def _validate_liquidation_call(
    rules: RevisionRules,
    collateral_reserve: ReserveState,
    debt_reserve: ReserveState,
    collateral_position: UserReservePosition,
    account: AccountData,
    reserve_debt: int,
    timestamp: int,
    liquidator_is_borrower: bool,
) -> None:
    """``ValidationLogic.validateLiquidationCall`` (price-oracle sentinel not modelled)."""
    if rules.forbids_self_liquidation:
        _require(not liquidator_is_borrower, "SelfLiquidation")
    _require(collateral_reserve.is_active and debt_reserve.is_active, "ReserveInactive")
    _require(not collateral_reserve.is_paused and not debt_reserve.is_paused, "ReservePaused")
    if rules.has_liquidation_grace_period:
        _require(
            collateral_reserve.liquidation_grace_period_until < timestamp
            and debt_reserve.liquidation_grace_period_until < timestamp,
            "LiquidationGraceSentinelCheckFailed",
        )
    _require(
        account.health_factor_wad < HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
        "HealthFactorNotBelowThreshold",
        f"health factor {account.health_factor_wad}",
    )
    collateral_enabled = collateral_position.using_as_collateral and not (
        rules.collateral_requires_reserve_liquidation_threshold and collateral_reserve.liquidation_threshold_bps == 0
    )
    _require(collateral_enabled, "CollateralCannotBeLiquidated")
    _require(reserve_debt != 0, "SpecifiedCurrencyNotBorrowedByUser")


def _burn_debt_tokens(
    rules: RevisionRules,
    debt_position: UserReservePosition,
    reserve_debt: int,
    actual_debt: int,
    has_no_collateral_left: bool,
    borrow_index: int,
) -> int:
    """``LiquidationLogic._burnDebtTokens`` (v3.3+): the scaled variable debt burned."""
    if reserve_debt == 0:
        return 0
    burn_amount = reserve_debt if has_no_collateral_left else actual_debt
    return _burn_scaled(rules.get_v_token_burn_scaled_amount(burn_amount, borrow_index), debt_position.scaled_variable_debt)


def _burn_debt_tokens_v3_0(
    debt_position: UserReservePosition, variable_debt: int, actual_debt: int, borrow_index: int
) -> tuple[int, int]:
    """v3.0 ``_burnDebtTokens``: variable debt first, the rest from stable debt.

    Returns ``(scaled variable debt burned, stable debt burned)``.
    """
    if variable_debt >= actual_debt:
        return _burn_scaled(ray_div(actual_debt, borrow_index), debt_position.scaled_variable_debt), 0
    scaled_burned = 0
    if variable_debt != 0:
        scaled_burned = _burn_scaled(ray_div(variable_debt, borrow_index), debt_position.scaled_variable_debt)
    return scaled_burned, actual_debt - variable_debt


def _burn_scaled(scaled_amount: int, scaled_balance: int) -> int:
    """``ScaledBalanceTokenBase._burnScaled``: non-zero amount, no more than the balance."""
    _require(scaled_amount != 0, "InvalidBurnAmount")
    checked_uint256(scaled_balance - scaled_amount)
    return scaled_amount


def _remove_collateral(
    rules: RevisionRules,
    trace: dict,
    collateral_position: UserReservePosition,
    collateral_amount: int,
    liquidity_index: int,
    receive_a_token: bool,
) -> int:
    """``_liquidateATokens`` / ``_burnCollateralATokens``; returns the borrower's scaled balance left."""
    if receive_a_token:
        scaled = rules.get_a_token_transfer_scaled_amount(collateral_amount, liquidity_index)
        remaining = checked_uint256(collateral_position.scaled_a_token_balance - scaled)
    else:
        scaled = _burn_scaled(
            rules.get_a_token_burn_scaled_amount(collateral_amount, liquidity_index),
            collateral_position.scaled_a_token_balance,
        )
        remaining = collateral_position.scaled_a_token_balance - scaled
    trace.update(collateral_scaled_to_liquidator=scaled)
    return remaining


def _transfer_protocol_fee(
    rules: RevisionRules, trace: dict, fee: int, remaining_scaled: int, liquidity_index: int
) -> None:
    """The treasury transfer, capped at the borrower's scaled balance ("1 wei imprecision")."""
    if fee == 0:
        return
    fee_scaled = rules.get_a_token_transfer_scaled_amount(fee, liquidity_index)
    if fee_scaled > remaining_scaled:
        fee = rules.get_a_token_balance(remaining_scaled, liquidity_index)
        # v3.5+ passes the capped scaled amount; earlier tokens re-divide the capped amount.
        fee_scaled = (
            remaining_scaled
            if rules.pool_passes_scaled_amounts
            else rules.get_a_token_transfer_scaled_amount(fee, liquidity_index)
        )
    checked_uint256(remaining_scaled - fee_scaled)
    trace.update(protocol_fee_transferred=fee, protocol_fee_scaled=fee_scaled)


def _burn_bad_debt(
    rules: RevisionRules,
    positions: dict[str, UserReservePosition],
    reserves: dict[str, ReserveState],
    debt_asset: str,
    timestamp: int,
) -> list[DeficitCreated]:
    """``LiquidationLogic._burnBadDebt`` (v3.3+): burn every other active debt in full as deficit."""
    deficits = []
    for asset, position in sorted(positions.items(), key=lambda item: _reserve(reserves, item[0]).id):
        if asset == debt_asset or not position.borrowing:
            continue
        reserve = _reserve(reserves, asset)
        if not reserve.is_active:
            continue
        borrow_index = get_normalized_debt(rules.revision, reserve, timestamp)
        debt = rules.get_v_token_balance(position.scaled_variable_debt, borrow_index)
        if debt == 0:
            continue
        scaled = _burn_scaled(rules.get_v_token_burn_scaled_amount(debt, borrow_index), position.scaled_variable_debt)
        deficits.append(DeficitCreated(asset, debt, scaled))
    return deficits
