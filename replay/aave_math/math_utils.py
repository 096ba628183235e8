"""Mirror of Aave v3 ``MathUtils`` (protocol/libraries/math/MathUtils.sol).

Rates are per-year rays (``1e27`` = 100% APR); timestamps are unix seconds. Solidity reads
``block.timestamp``; here the current timestamp is an explicit argument.

``calculateCompoundedInterest`` has two forms:

- binomial (v3.0 ``@aave/core-v3`` 1.19.3 and v3.3):
  ``RAY + r*n/Y + n(n-1)*b2/2 + n(n-1)(n-2)*b3/6`` with ``b2 = rayMul(r, r)/Y^2`` and
  ``b3 = rayMul(b2, r)/Y`` (per-second powers taken *before* multiplying by ``n``);
- Taylor (v3.4+, "multiplications by exp first, then divide by SECONDS_PER_YEAR"):
  ``x = r*n/Y``; ``RAY + x + rayMul(x, x/2 + rayMul(x, x/6))``.

``revisions.calculate_compounded_interest(..., revision)`` picks the form a revision uses.
``mulDivCeil`` exists from v3.5 on; there is no ``mulDivFloor`` in any revision.
"""

from __future__ import annotations

from .wad_ray_math import (
    RAY,
    UINT256_MAX,
    SolidityRevert,
    _require_uint256,
    checked_div,
    checked_uint256,
    ray_mul,
)

SECONDS_PER_YEAR = 365 * 24 * 60 * 60


def _elapsed_seconds(last_update_timestamp: int, current_timestamp: int) -> int:
    # Solidity: `currentTimestamp - uint256(lastUpdateTimestamp)`, checked.
    return checked_uint256(current_timestamp - last_update_timestamp)


def calculate_linear_interest(rate_ray: int, last_update_timestamp: int, current_timestamp: int) -> int:
    """``MathUtils.calculateLinearInterest`` (all revisions): ``RAY + rate * dt / SECONDS_PER_YEAR``.

    The division floors. Returns a ray factor (``RAY`` when ``dt == 0``).
    """
    _require_uint256(rate_ray)
    accrued = checked_uint256(rate_ray * _elapsed_seconds(last_update_timestamp, current_timestamp))
    return checked_uint256(RAY + accrued // SECONDS_PER_YEAR)


def calculate_compounded_interest_binomial(
    rate_ray: int, last_update_timestamp: int, current_timestamp: int
) -> int:
    """``MathUtils.calculateCompoundedInterest`` as in v3.0 (``@aave/core-v3`` 1.19.3) and v3.3.

    Three-term binomial expansion of ``(1 + r/Y)^n``. Every division floors; ``rayMul``
    rounds half up. Returns a ray factor.
    """
    _require_uint256(rate_ray)
    exp = _elapsed_seconds(last_update_timestamp, current_timestamp)
    if exp == 0:
        return RAY
    exp_minus_one = exp - 1
    exp_minus_two = exp - 2 if exp > 2 else 0
    base_power_two = ray_mul(rate_ray, rate_ray) // (SECONDS_PER_YEAR * SECONDS_PER_YEAR)
    base_power_three = ray_mul(base_power_two, rate_ray) // SECONDS_PER_YEAR
    second_term = checked_uint256(checked_uint256(exp * exp_minus_one) * base_power_two) // 2
    third_term = (
        checked_uint256(checked_uint256(checked_uint256(exp * exp_minus_one) * exp_minus_two) * base_power_three)
        // 6
    )
    linear_term = checked_uint256(rate_ray * exp) // SECONDS_PER_YEAR
    return checked_uint256(RAY + linear_term + second_term + third_term)


def calculate_compounded_interest_taylor(
    rate_ray: int, last_update_timestamp: int, current_timestamp: int
) -> int:
    """``MathUtils.calculateCompoundedInterest`` as in v3.4, v3.5 and v3.6.

    ``x = rate * dt / SECONDS_PER_YEAR`` (floored); ``RAY + x + rayMul(x, x/2 + rayMul(x, x/6))``
    (``rayMul`` rounds half up, ``/2`` and ``/6`` floor). The Solidity block is ``unchecked``,
    so the sums wrap modulo 2**256 exactly as on chain (unreachable for real rates).
    """
    _require_uint256(rate_ray)
    exp = _elapsed_seconds(last_update_timestamp, current_timestamp)
    if exp == 0:
        return RAY
    modulus = UINT256_MAX + 1
    x = ((rate_ray * exp) % modulus) // SECONDS_PER_YEAR
    inner = (x // 2 + ray_mul(x, x // 6)) % modulus
    return (RAY + x + ray_mul(x, inner)) % modulus


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """``MathUtils.mulDivCeil`` (v3.5+): ``a * b / c`` rounded up.

    Reverts when ``c == 0`` or when ``a * b`` overflows uint256.
    """
    _require_uint256(a, b, c)
    if c == 0:
        raise SolidityRevert("MathUtils.mulDivCeil", "division by zero")
    if b != 0 and a > UINT256_MAX // b:
        raise SolidityRevert("MathUtils.mulDivCeil", "overflow")
    quotient, remainder = divmod(a * b, c)
    return quotient + (1 if remainder else 0)


def mul_div_floor(a: int, b: int, c: int) -> int:
    """The inline Solidity expression ``(a * b) / c`` with checked ``*`` (not a library function).

    Rounds down. Used for collateral values in every revision and for debt values up to
    v3.4 (``GenericLogic._getUserDebtInBaseCurrency``). Reverts on overflow (Panic 0x11)
    and when ``c == 0`` (Panic 0x12).
    """
    _require_uint256(a, b, c)
    return checked_div(checked_uint256(a * b), c)
