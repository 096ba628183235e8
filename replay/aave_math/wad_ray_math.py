"""Mirror of Aave v3 ``WadRayMath`` (protocol/libraries/math/WadRayMath.sol).

Every function takes and returns Python ints and behaves like the uint256 Solidity
function of the same name: same rounding, and the same overflow / division-by-zero
checks, which raise :class:`SolidityRevert` (a ``ValueError``).

Availability per revision:

- ``wad_mul``, ``wad_div``, ``ray_mul``, ``ray_div``, ``ray_to_wad``, ``wad_to_ray``:
  every v3 revision (3.0 through 3.6), unchanged; they round half up.
- ``ray_mul_floor``, ``ray_mul_ceil``, ``ray_div_floor``, ``ray_div_ceil``: added in
  v3.5 (used by ``TokenMath``), present in v3.6. Earlier revisions never call them.

This module also holds the uint256 helpers (:data:`UINT256_MAX`, :func:`checked_uint256`,
:func:`checked_div`) used to mirror Solidity 0.8 checked arithmetic in the other modules.
"""

from __future__ import annotations

WAD = 10**18
HALF_WAD = WAD // 2
RAY = 10**27
HALF_RAY = RAY // 2
WAD_RAY_RATIO = 10**9

UINT256_MAX = 2**256 - 1


class SolidityRevert(ValueError):
    """The mirrored Solidity code would revert.

    ``reason`` names the failing check: a custom error name (``"MustNotLeaveDust"``),
    ``"Panic(0x11)"`` (checked arithmetic over/underflow), ``"Panic(0x12)"``
    (division by zero) or the library function whose assembly guard fails
    (``"WadRayMath.rayMul"``; those revert with empty data on chain).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def checked_uint256(value: int) -> int:
    """Return ``value`` if it fits a uint256, else revert like Solidity 0.8 checked math."""
    if value < 0:
        raise SolidityRevert("Panic(0x11)", f"arithmetic underflow ({value})")
    if value > UINT256_MAX:
        raise SolidityRevert("Panic(0x11)", "arithmetic overflow")
    return value


def checked_div(a: int, b: int) -> int:
    """Solidity ``a / b`` on uint256: floors, reverts with Panic(0x12) when ``b == 0``."""
    if b == 0:
        raise SolidityRevert("Panic(0x12)", "division by zero")
    return a // b


def _require_uint256(*values: int) -> None:
    for value in values:
        if value < 0 or value > UINT256_MAX:
            raise SolidityRevert("uint256", f"argument out of range: {value}")


def wad_mul(a: int, b: int) -> int:
    """``WadRayMath.wadMul``: ``a * b / WAD``, rounded half up.

    Reverts when ``a > (UINT256_MAX - HALF_WAD) / b``.
    """
    _require_uint256(a, b)
    if b != 0 and a > (UINT256_MAX - HALF_WAD) // b:
        raise SolidityRevert("WadRayMath.wadMul", "overflow")
    return (a * b + HALF_WAD) // WAD


def wad_div(a: int, b: int) -> int:
    """``WadRayMath.wadDiv``: ``a * WAD / b``, rounded half up (adds ``b / 2``, floored).

    Reverts when ``b == 0`` or ``a > (UINT256_MAX - b / 2) / WAD``.
    """
    _require_uint256(a, b)
    if b == 0 or a > (UINT256_MAX - b // 2) // WAD:
        raise SolidityRevert("WadRayMath.wadDiv", "division by zero or overflow")
    return (a * WAD + b // 2) // b


def ray_mul(a: int, b: int) -> int:
    """``WadRayMath.rayMul``: ``a * b / RAY``, rounded half up (v3.0 through v3.6).

    Reverts when ``a > (UINT256_MAX - HALF_RAY) / b``.
    """
    _require_uint256(a, b)
    if b != 0 and a > (UINT256_MAX - HALF_RAY) // b:
        raise SolidityRevert("WadRayMath.rayMul", "overflow")
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    """``WadRayMath.rayMulFloor`` (v3.5+): ``a * b / RAY``, rounded down.

    Reverts when ``a * b`` overflows uint256.
    """
    _require_uint256(a, b)
    if b != 0 and a > UINT256_MAX // b:
        raise SolidityRevert("WadRayMath.rayMulFloor", "overflow")
    return (a * b) // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    """``WadRayMath.rayMulCeil`` (v3.5+): ``a * b / RAY``, rounded up.

    Reverts when ``a * b`` overflows uint256.
    """
    _require_uint256(a, b)
    if b != 0 and a > UINT256_MAX // b:
        raise SolidityRevert("WadRayMath.rayMulCeil", "overflow")
    quotient, remainder = divmod(a * b, RAY)
    return quotient + (1 if remainder else 0)


def ray_div(a: int, b: int) -> int:
    """``WadRayMath.rayDiv``: ``a * RAY / b``, rounded half up (adds ``b / 2``, floored).

    Reverts when ``b == 0`` or ``a > (UINT256_MAX - b / 2) / RAY``.
    """
    _require_uint256(a, b)
    if b == 0 or a > (UINT256_MAX - b // 2) // RAY:
        raise SolidityRevert("WadRayMath.rayDiv", "division by zero or overflow")
    return (a * RAY + b // 2) // b


def ray_div_floor(a: int, b: int) -> int:
    """``WadRayMath.rayDivFloor`` (v3.5+): ``a * RAY / b``, rounded down.

    Reverts when ``b == 0`` or ``a * RAY`` overflows uint256.
    """
    _require_uint256(a, b)
    if b == 0 or a > UINT256_MAX // RAY:
        raise SolidityRevert("WadRayMath.rayDivFloor", "division by zero or overflow")
    return (a * RAY) // b


def ray_div_ceil(a: int, b: int) -> int:
    """``WadRayMath.rayDivCeil`` (v3.5+): ``a * RAY / b``, rounded up.

    Reverts when ``b == 0`` or ``a * RAY`` overflows uint256.
    """
    _require_uint256(a, b)
    if b == 0 or a > UINT256_MAX // RAY:
        raise SolidityRevert("WadRayMath.rayDivCeil", "division by zero or overflow")
    quotient, remainder = divmod(a * RAY, b)
    return quotient + (1 if remainder else 0)


def ray_to_wad(a: int) -> int:
    """``WadRayMath.rayToWad``: ``a / 1e9``, rounded half up (never reverts)."""
    _require_uint256(a)
    quotient, remainder = divmod(a, WAD_RAY_RATIO)
    return quotient + (1 if remainder >= WAD_RAY_RATIO // 2 else 0)


def wad_to_ray(a: int) -> int:
    """``WadRayMath.wadToRay``: ``a * 1e9`` (exact); reverts on overflow."""
    _require_uint256(a)
    result = a * WAD_RAY_RATIO
    if result > UINT256_MAX:
        raise SolidityRevert("WadRayMath.wadToRay", "overflow")
    return result
