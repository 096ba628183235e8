"""The Compound v2 lineage's own math (Compound, Moonwell, Venus), mirrored from the sources with
their Exp/mantissa rounding, per variant. Protocol layer: it imports only the foundation.

``exp`` mirrors ``ExponentialNoError`` (and the half-up ``mulExp`` of the 2020 ``Exponential``),
``ctoken`` the cToken's exchange rate, borrow balance, interest accrual and seize split,
``comptroller`` account liquidity, ``liquidateBorrowAllowed`` and ``liquidateCalculateSeizeTokens``,
``variants`` what differs between Compound 2020, Compound >= 2.9 / Moonwell and Venus.
"""

from postmortem.replay.compound_v2.variants import VARIANTS, Variant, variant  # noqa: F401
