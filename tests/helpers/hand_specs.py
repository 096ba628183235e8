"""Liquidations in round numbers a person can multiply, and the payouts computed by hand from them."""

from __future__ import annotations

from helpers.synthetic import CBETH, ETH, MISPRICED_FROM, Liq, U, L

A, B, C, D = U[0], U[1], U[2], U[3]


def hand_specs() -> list[Liq]:
    """Round numbers a person can multiply: collateral received as logged, debt repaid."""
    b = MISPRICED_FROM
    return [
        Liq(b, 0, 1, "core", A, L[0], 120 * ETH, overrides={"liquidated_collateral_amount": 100 * ETH}),
        Liq(b, 1, 2, "prime", A, L[1], 50_500 * ETH // 1000, overrides={"liquidated_collateral_amount": 41_300 * ETH // 1000}),
        Liq(b + 1, 0, 3, "core", B, L[0], 10 * ETH, debt_asset=CBETH, overrides={"liquidated_collateral_amount": 9 * ETH}),
        Liq(b + 1, 1, 4, "core", B, L[1], 3, overrides={"liquidated_collateral_amount": 123_456_789}),
        Liq(b + 2, 0, 5, "core", C, L[2], 24 * ETH, "eligible_anyway", hf_reported=96 * 10**16, hf_true=98 * 10**16,
            overrides={"liquidated_collateral_amount": 20 * ETH}),
        Liq(b + 3, 0, 6, "prime", D, L[2], 7 * ETH, "anomaly", hf_reported=101 * 10**16, hf_true=103 * 10**16,
            overrides={"liquidated_collateral_amount": 6 * ETH}),
    ]


# By hand, with a rate gap of 0.034902118 ETH per wstETH and a bonus basis of 100 bps (1%):
#   A: 100 wstETH x 0.034902118 = 3.4902118     41.3 wstETH x 0.034902118 = 1.4414574734
#      120 WETH x 1% = 1.2                       50.5 WETH x 1% = 0.505
#      total 6.6366692734 ETH
#   B: 9 wstETH x 0.034902118 = 0.314119062      10 cbETH at 2200/2000 = 11 ETH, x 1% = 0.11
#      123456789 wei x 0.034902118 = 4308903.34... wei, rounded down to 4308903 wei; 3 wei x 1% = 0
#      total 0.424119062004308903 ETH
#   C (eligible anyway): 20 wstETH x 0.034902118 = 0.69804236; its bonus, 24 x 1% = 0.24, only in the "window" scope
#   D (anomaly): 6 wstETH x 0.034902118 = 0.209412708, in the default scope only (oracle loss of every liquidation)
HAND_A = 6_636_669_273_400_000_000
HAND_B = 424_119_062_004_308_903
HAND_C_ORACLE = 698_042_360_000_000_000
HAND_C = HAND_C_ORACLE + 240_000_000_000_000_000
HAND_D_ORACLE = 209_412_708_000_000_000
