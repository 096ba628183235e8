"""What differs between the Compound v2 lineage's members, as data the math reads.

- ``compound-2020``: Compound v2 as of November 2020 (``Exponential.sol``: ``mulExp`` rounds half
  up; ``tokensToDenom = mulExp3(collateralFactor, exchangeRate, price)``; no protocol seize share).
- ``compound-2.9``: Compound >= 2.9 (``ExponentialNoError``: every product truncates;
  ``protocolSeizeShare`` 2.8% of the seized cTokens to reserves).
- ``moonwell``: Moonwell's MToken/Comptroller, the same math as Compound >= 2.9.
- ``venus-isolated``: Venus isolated pools: collateral weighted as ``weight * (exchangeRate *
  price)``; the liquidation threshold decides a shortfall (liquidation), the collateral factor a
  borrow; ``minLiquidatableCollateral``; the protocol's seize share is a share of the incentive.
"""

from __future__ import annotations

from dataclasses import dataclass

from postmortem.errors import PostmortemError


@dataclass(frozen=True)
class Variant:
    name: str
    half_up_products: bool           # 2020 Exponential.mulExp rounds half up
    weight_after_price: bool         # Venus: weight * (exchangeRate * price) instead of (cf * er) * price
    liquidation_threshold: bool      # a separate threshold decides the shortfall of a liquidation
    protocol_seize_share: bool
    seize_share_of_incentive: bool   # Venus isolated pools: share / incentive
    min_liquidatable_collateral: bool
    description: str


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("compound-2020", True, False, False, False, False, False,
            "Compound v2 as of November 2020: Exponential.sol products round half up, no protocol seize share"),
    Variant("compound-2.9", False, False, False, True, False, False,
            "Compound v2 >= 2.9: ExponentialNoError products truncate, protocolSeizeShare of the seized cTokens"),
    Variant("moonwell", False, False, False, True, False, False,
            "Moonwell (Compound v2 fork): the math of Compound >= 2.9"),
    Variant("venus-isolated", False, True, True, True, True, True,
            "Venus isolated pools: liquidation threshold for a shortfall, collateral factor for a borrow, "
            "protocol seize share of the incentive"),
)}


def variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise PostmortemError(f"unknown Compound v2 variant {name!r}; known: {', '.join(VARIANTS)} (set `variant` "
                              "in the incident file)") from None
