"""Mirror of Aave v3 ``PercentageMath`` (protocol/libraries/math/PercentageMath.sol).

Percentages are basis points: ``PERCENTAGE_FACTOR = 10_000`` is 100.00%.

Availability per revision:

- ``percent_mul``, ``percent_div`` (half up): every v3 revision.
- ``percent_mul_floor``, ``percent_mul_ceil``, ``percent_div_ceil``: added in v3.5, present
  in v3.6 (there is no ``percentDivFloor`` in any revision).

Guards raise :class:`~replay.aave_math.wad_ray_math.SolidityRevert` (a ``ValueError``).
"""

from __future__ import annotations

from .wad_ray_math import UINT256_MAX, SolidityRevert, _require_uint256

PERCENTAGE_FACTOR = 10_000
HALF_PERCENTAGE_FACTOR = PERCENTAGE_FACTOR // 2


def percent_mul(value: int, percentage_bps: int) -> int:
    """``PercentageMath.percentMul``: ``value * percentage / 1e4``, rounded half up.

    Reverts when ``value > (UINT256_MAX - HALF_PERCENTAGE_FACTOR) / percentage``.
    A zero percentage returns 0.
    """
    _require_uint256(value, percentage_bps)
    if percentage_bps != 0 and value > (UINT256_MAX - HALF_PERCENTAGE_FACTOR) // percentage_bps:
        raise SolidityRevert("PercentageMath.percentMul", "overflow")
    return (value * percentage_bps + HALF_PERCENTAGE_FACTOR) // PERCENTAGE_FACTOR


def percent_mul_floor(value: int, percentage_bps: int) -> int:
    """``PercentageMath.percentMulFloor`` (v3.5+): ``value * percentage / 1e4``, rounded down."""
    _require_uint256(value, percentage_bps)
    if percentage_bps != 0 and value > UINT256_MAX // percentage_bps:
        raise SolidityRevert("PercentageMath.percentMulFloor", "overflow")
    return (value * percentage_bps) // PERCENTAGE_FACTOR


def percent_mul_ceil(value: int, percentage_bps: int) -> int:
    """``PercentageMath.percentMulCeil`` (v3.5+): ``value * percentage / 1e4``, rounded up."""
    _require_uint256(value, percentage_bps)
    if percentage_bps != 0 and value > UINT256_MAX // percentage_bps:
        raise SolidityRevert("PercentageMath.percentMulCeil", "overflow")
    quotient, remainder = divmod(value * percentage_bps, PERCENTAGE_FACTOR)
    return quotient + (1 if remainder else 0)


def percent_div(value: int, percentage_bps: int) -> int:
    """``PercentageMath.percentDiv``: ``value * 1e4 / percentage``, rounded half up.

    Half up means ``percentage / 2`` is added before the floor division. Reverts when
    ``percentage == 0`` or on overflow.
    """
    _require_uint256(value, percentage_bps)
    if percentage_bps == 0 or value > (UINT256_MAX - percentage_bps // 2) // PERCENTAGE_FACTOR:
        raise SolidityRevert("PercentageMath.percentDiv", "division by zero or overflow")
    return (value * PERCENTAGE_FACTOR + percentage_bps // 2) // percentage_bps


def percent_div_ceil(value: int, percentage_bps: int) -> int:
    """``PercentageMath.percentDivCeil`` (v3.5+): ``value * 1e4 / percentage``, rounded up."""
    _require_uint256(value, percentage_bps)
    if percentage_bps == 0 or value > UINT256_MAX // PERCENTAGE_FACTOR:
        raise SolidityRevert("PercentageMath.percentDivCeil", "division by zero or overflow")
    quotient, remainder = divmod(value * PERCENTAGE_FACTOR, percentage_bps)
    return quotient + (1 if remainder else 0)
