"""Integer-exact mirror of Aave v3 math, per pool revision.

Modules follow the Solidity libraries name for name (``WadRayMath`` -> ``wad_ray_math``,
``GenericLogic.calculateUserAccountData`` -> ``generic_logic.calculate_user_account_data``)
so they can be audited side by side. Everything is a Python int: token wei, base-currency
units (1e8 = 1 USD on Ethereum markets), rays (1e27) and wads (1e18).

Entry points for a replay engine::

    account = health_factor(Revision.V3_6, positions, reserves, prices, user_emode, timestamp)
    result = execute_liquidation_call(Revision.V3_6, positions, reserves, prices, user_emode,
                                      timestamp, collateral_asset=..., debt_asset=...,
                                      debt_to_cover=...)
"""

from .generic_logic import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    AccountData,
    EModeCategory,
    ReserveState,
    ReserveValuation,
    UserReservePosition,
    a_token_balance_of,
    calculate_user_account_data,
    decode_reserve_configuration,
    decode_user_configuration,
    get_normalized_debt,
    get_normalized_income,
    health_factor,
    variable_debt_balance_of,
)
from .liquidation_logic import (
    MIN_LEFTOVER_BASE,
    DeficitCreated,
    LiquidationResult,
    LossSplit,
    execute_liquidation_call,
    liquidation_loss_split,
)
from .revisions import Revision, RevisionRules, rules_for
from .wad_ray_math import RAY, WAD, SolidityRevert

__all__ = [
    "HEALTH_FACTOR_LIQUIDATION_THRESHOLD",
    "MIN_LEFTOVER_BASE",
    "RAY",
    "WAD",
    "AccountData",
    "DeficitCreated",
    "EModeCategory",
    "LiquidationResult",
    "LossSplit",
    "ReserveState",
    "ReserveValuation",
    "Revision",
    "RevisionRules",
    "SolidityRevert",
    "UserReservePosition",
    "a_token_balance_of",
    "calculate_user_account_data",
    "decode_reserve_configuration",
    "decode_user_configuration",
    "execute_liquidation_call",
    "get_normalized_debt",
    "get_normalized_income",
    "health_factor",
    "liquidation_loss_split",
    "rules_for",
    "variable_debt_balance_of",
]
