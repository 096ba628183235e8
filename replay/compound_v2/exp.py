"""Compound's fixed-point numbers: an ``Exp`` is an integer mantissa scaled by 1e18.

Named after ``ExponentialNoError.sol`` (Compound >= 2.8, Moonwell, Venus): every product
truncates. The 2020 Comptroller used ``Exponential.sol``, whose ``mulExp`` of two Exps adds half
the scale before dividing (rounds half up); :func:`mul_exp_half_up` is that one. Plain Python
integers, so nothing overflows; Solidity's checked arithmetic reverts where these would be out of
uint256, which a replay of logged transactions never meets.
"""

from __future__ import annotations

EXP_SCALE = 10**18
DOUBLE_SCALE = 10**36
HALF_EXP_SCALE = EXP_SCALE // 2
MANTISSA_ONE = EXP_SCALE


def truncate(exp: int) -> int:
    """``truncate(Exp)``: the integer part."""
    return exp // EXP_SCALE


def mul_exp(a: int, b: int) -> int:
    """``mul_(Exp a, Exp b)``: ``a * b / 1e18``, truncating."""
    return a * b // EXP_SCALE


def mul_exp_half_up(a: int, b: int) -> int:
    """The 2020 ``Exponential.mulExp(Exp a, Exp b)``: ``(a * b + 0.5e18) / 1e18`` (half up)."""
    return (a * b + HALF_EXP_SCALE) // EXP_SCALE


def mul_exp3_half_up(a: int, b: int, c: int) -> int:
    """The 2020 ``mulExp3(a, b, c)`` = ``mulExp(mulExp(a, b), c)``, each half up."""
    return mul_exp_half_up(mul_exp_half_up(a, b), c)


def mul_scalar_truncate(exp: int, scalar: int) -> int:
    """``mul_ScalarTruncate(Exp a, uint scalar)``: ``truncate(a * scalar)``."""
    return exp * scalar // EXP_SCALE


def mul_scalar_truncate_add(exp: int, scalar: int, addend: int) -> int:
    """``mul_ScalarTruncateAddUInt(Exp a, uint scalar, uint addend)``."""
    return exp * scalar // EXP_SCALE + addend


def mul_uint_exp(a: int, exp: int) -> int:
    """``mul_(uint a, Exp b)``: ``a * b / 1e18``, truncating."""
    return a * exp // EXP_SCALE


def div_exp(a: int, b: int) -> int:
    """``div_(Exp a, Exp b)`` (and the 2020 ``divExp`` = ``getExp``): ``a * 1e18 / b``, truncating."""
    return a * EXP_SCALE // b


def div_uint_exp(a: int, exp: int) -> int:
    """``div_(uint a, Exp b)``: ``a * 1e18 / b``, truncating."""
    return a * EXP_SCALE // exp


def get_exp(num: int, denom: int) -> int:
    """``getExp(num, denom)``: the Exp of ``num / denom``, truncating."""
    return num * EXP_SCALE // denom
