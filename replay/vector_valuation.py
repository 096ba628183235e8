"""Exact account data of many users at one state, in NumPy, without big integers.

:func:`account_sums` returns, for every user of a batch, ``totalCollateralBase``,
``totalDebtBase`` and the health factor (wad) exactly as
:func:`replay.aave_math.generic_logic.calculate_user_account_data` computes them (same revision
rules, same rounding), or says that it could not be sure for that user; the caller then values
that user with the scalar reference. Nothing is ever approximated: a value is returned only when
it is *proven* equal to the reference. Inputs are the float mirror of the book (scaled balances as
float64, plus their exact rest for large amounts) and per-asset Python ints (indexes, prices, units).

Proof of exactness (``u = 2**-53``, the unit roundoff of float64; ``fl(a / b)`` of two Python ints
is correctly rounded, so every per-asset factor below carries a relative error of at most ``u``):

1. **Balance.** ``X = s * I / RAY`` (``s`` the scaled balance, ``I`` the normalized index). The
   float ``x = fl(fl(s) * fl(I / RAY))`` has ``|x - X| <= 4u|X| (1 + u)`` (at most two roundings
   for ``s``, whose float may come from its two 64-bit words, one each for the factor and the
   product). With ``REL = 2**-49 = 16u`` the interval
   ``[fl(x - x*REL), fl(x + x*REL)]`` contains ``X`` (the two extra roundings add at most
   ``2u|x|``; ``4u + 2u + O(u^2) < 16u``). The token rounds ``X`` down (``rayMulFloor``), up
   (``rayMulCeil``) or half up (``rayMul``); when both interval ends round to the same integer
   the balance is that integer. Regime A takes this route only for ``x < 2**48``, where adding
   ``0.5`` to an interval end is exact, so the rounding of the ends is the rounding of the reals.
   With the amount's exact rest (see 3) ``X`` is computed as a double-double instead, within
   ``2**-98 |X|``, and the ends (``+ 0.5`` by an exact ``TwoSum`` for half up) are rounded as pairs:
   then only a balance within ``2**-98 |X|`` of a rounding boundary is left unsure.
2. **Value from an exact balance (regime A).** ``V = bal * p / unit`` rounded down
   (``mulDivFloor``) or up (``mulDivCeil``, debt in v3.5+). ``v``, the high part of the
   double-double ``bal * (pu_hi + pu_lo)`` (``TwoProduct``; ``pu_lo`` the exact remainder of
   ``p / unit``), is within ``1/2 + 2**-100 V`` of ``V``; for ``v < 2**53`` that is below 1, so
   ``v0 = floor(v)`` is within 1 of ``floor(V)``. The remainder ``t = bal * p - v0 * unit`` then lies in
   ``(-2 unit, 2 unit)``, inside ``int64`` for ``unit <= 1e18``, so computing it modulo ``2**64``
   (NumPy's wrapping ``uint64`` products) gives it exactly; ``floor(V) = v0 + t // unit`` and the
   ceiling adds one when ``t mod unit != 0``. Exact, whatever the fraction.
3. **Value with an unknown balance (regime B, large balances of many-decimal tokens).** The
   balance lies in ``(X - 1, X]`` (floor), ``[X, X + 1)`` (ceil) or ``[X - 1/2, X + 1/2]`` (half
   up), so ``bal * p / unit`` lies within ``X * g`` minus/plus that many ``pu = p / unit``, with
   ``g = I * p / (RAY * unit)``. ``y = fl(fl(s) * fl(g))`` is within ``3u`` of ``X * g``; the
   interval ``y -/+ (y*REL + k*pu*(1 + REL))`` encloses the value's real argument (same margin as
   in 1). When its ends round (down or up, as the revision does) to the same integer below
   ``2**51``, that is the value. Otherwise the row is unsure.
   With the amount's exact rest (``scaled_*_rest``: ``s = fl(s) + rest``, what the book's mirror
   keeps) the product is a double-double: ``g = g_hi + g_lo`` (``g_lo`` the correctly rounded
   remainder, from exact fractions), ``s * g`` by Dekker's ``TwoProduct`` plus the cross terms,
   within ``2**-98`` of ``|y|`` (a double-double product errs by a few ``2**-106``); the interval is
   ``y -/+ (|y| 2**-98 + k*pu*(1 + REL))`` and its ends are rounded as pairs (a non-integer high part
   lies an ulp or more from every integer, and the normalized low part is at most half an ulp).
   Then only a value within ``p / unit`` of an integer (for an 18-decimal token: a few 1e-7 base
   units) is left unsure.
4. **Sums and health factor.** Values below ``2**51`` sum exactly in ``int64`` (guards:
   ``totalCollateral, totalDebt < 2**53``); ``sum(value * LT)`` is kept as ``A * 2**26 + B`` with
   ``A = sum((value >> 26) * LT)`` and ``B = sum((value mod 2**26) * LT)``, both exact, and divided by
   long division (``_divmod_pair``). Up to v3.4 ``percentMul(C, avg)`` is
   ``(C // 1e4) * avg + ((C mod 1e4) * avg + 5e3) // 1e4`` (``avg <= 1e4``), exact.
   ``wadDiv(X, D) = floor((X * 1e18 + floor(D / 2)) / D)`` is computed by long division in base
   1000: ``q = X // D``, then six digits of ``(X mod D) * 1000**6 / D`` with a remainder below
   ``D < 2**53``, so every ``r * 1000 < 2**63``; the half-``D`` term adds one exactly when the final
   remainder plus ``floor(D / 2)`` reaches ``D``. v3.5+: ``HF = wadDiv(sum(value*LT), D) // 1e4``
   (``= q * 1e14 + digits // 1e4``); up to v3.4: ``HF = wadDiv(percentMul(C, sum // C), D)``.
   A user without debt (``HF = type(uint256).max``) or with a health factor of 9e4 and more is
   left to the reference.

A user is returned as exact only when every one of its rows and sums passed these checks; the
tests (``tests/test_replay_equivalence.py``) compare both paths on randomized markets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from postmortem.replay.aave_math import RAY
from postmortem.replay.aave_math import math_utils, wad_ray_math
from postmortem.replay.aave_math.revisions import RevisionRules

__all__ = ["AccountSums", "account_sums", "segment_rows"]

REL = 2.0**-49
_A_MAX = 2.0**48  # regime A: balances below this are found exactly
_V_MAX = 2.0**51  # every value stays below this (float path)
_V_MAX_PAIR = 2.0**53  # the same with double-double products
_SUM_MAX = 2**53
_WAD = 10**18

_FLOOR, _CEIL, _HALF = 0, 1, 2
_BALANCE_MODE = {wad_ray_math.ray_mul_floor: _FLOOR, wad_ray_math.ray_mul_ceil: _CEIL, wad_ray_math.ray_mul: _HALF}
_VALUE_MODE = {math_utils.mul_div_floor: _FLOOR, math_utils.mul_div_ceil: _CEIL}


@dataclass(frozen=True)
class AccountSums:
    """Per user of the batch: ``exact[i]`` says whether the three figures of user ``i`` are proven."""

    collateral_base: np.ndarray  # int64
    debt_base: np.ndarray  # int64
    health_factor_wad: np.ndarray  # int64 (meaningful where exact)
    exact: np.ndarray  # bool


def segment_rows(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Row numbers of consecutive segments ``[starts[i], starts[i] + counts[i])``, concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
    return offsets + np.arange(total, dtype=np.int64)


def _modes(rules: RevisionRules) -> tuple[int, int, int, int] | None:
    try:
        return (_BALANCE_MODE[rules.get_a_token_balance], _BALANCE_MODE[rules.get_v_token_balance],
                _VALUE_MODE[rules.collateral_value_in_base], _VALUE_MODE[rules.debt_value_in_base])
    except KeyError:
        return None


_SPLIT = 134217729.0  # 2**27 + 1
_DD_REL = 2.0**-98


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dekker's split: ``a = hi + lo`` exactly, each with at most 26 significant bits."""
    c = _SPLIT * a
    hi = c - (c - a)
    return hi, a - hi


def _two_prod(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a * b = p + e`` exactly (Dekker), without a fused multiply-add."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b = s + e`` exactly (Knuth), whatever the magnitudes."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _fast_two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a + b = s + e`` exactly when ``|a| >= |b|``."""
    s = a + b
    return s, b - (s - a)


def _dd_floor(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """``floor(hi + lo)`` of a normalized pair (``|lo| <= ulp(hi) / 2``) with ``|hi| < 2**53``: a
    non-integer ``hi`` is at least one ulp from every integer, so only an integer ``hi`` moves (and
    ``hi - 1`` is exact)."""
    f = np.floor(hi)
    return np.where(f == hi, hi + np.floor(lo), f)


def _round(x: np.ndarray, mode: int) -> np.ndarray:
    if mode == _FLOOR:
        return np.floor(x)
    if mode == _CEIL:
        return np.ceil(x)
    return np.floor(x + 0.5)


def _rest(num: int, den: int, hi: float) -> float:
    """``num / den - hi``, correctly rounded: the same float as ``float(Fraction(num, den) - Fraction(hi))``
    (Python's division of two ints is correctly rounded, and ``hi`` is ``m / 2**k`` exactly), in
    integers only."""
    m, d2 = hi.as_integer_ratio()
    return (num * d2 - m * den) / (den * d2)


def _values(s: np.ndarray, a: np.ndarray, index: Sequence[int], price: Sequence[int], decimals: Sequence[int],
            bal_mode: int, val_mode: int, rest: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``value(balance(s, index), price, unit)`` per row where proven (see the module docstring)."""
    k = len(index)
    unit = [10**d for d in decimals]
    c = np.array([i / RAY for i in index])
    g = np.array([i * p / (RAY * u) for i, p, u in zip(index, price, unit)])
    pu = np.array([p / u for p, u in zip(price, unit)])
    p64 = np.array(price, dtype=np.uint64)
    u64 = np.array(unit, dtype=np.uint64)
    n = len(s)
    value = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    if n == 0 or k == 0:
        return value, ok
    # 1-2: regime A, the balance exactly, then the value exactly by a wrapped remainder
    x = s * c[a]
    if rest is None:
        slack = x * REL
        lo, hi = _round(x - slack, bal_mode), _round(x + slack, bal_mode)
        in_a = (x + slack < _A_MAX) & (lo == hi)
    else:
        # the balance's real argument as a double-double (see regime B), rounded as pairs
        c_lo = np.array([_rest(i, RAY, ch) for i, ch in zip(index, c.tolist())])
        p_, e_ = _two_prod(s, c[a])
        e_ = e_ + (s * c_lo[a] + rest * c[a])
        xh, xl = _fast_two_sum(p_, e_)
        slack = np.abs(xh) * _DD_REL
        small = np.abs(xh) < _A_MAX
        xh, xl = np.where(small, xh, 0.0), np.where(small, xl, 0.0)
        if bal_mode == _HALF:
            sh, se = _two_sum(xh, np.full_like(xh, 0.5))
            xh, xl = _fast_two_sum(sh, se + xl)
        lo_h, lo_l = _fast_two_sum(xh, xl - slack)
        hi_h, hi_l = _fast_two_sum(xh, xl + slack)
        if bal_mode == _CEIL:
            lo, hi = -_dd_floor(-lo_h, -lo_l), -_dd_floor(-hi_h, -hi_l)
        else:
            lo, hi = _dd_floor(lo_h, lo_l), _dd_floor(hi_h, hi_l)
        in_a = small & (lo == hi)
    ia = np.nonzero(in_a)[0]
    if len(ia):
        aa = a[ia]
        bal = lo[ia]
        # v within 1 of bal * p / unit: 2u relative below 2**51; as a pair (pu = pu_hi + pu_lo) below 2**53
        pu_lo = np.array([_rest(p, u, ph) for p, u, ph in zip(price, unit, pu.tolist())])
        vh, ve = _two_prod(bal, pu[aa])
        v, _ = _fast_two_sum(vh, ve + bal * pu_lo[aa])
        fits = v < _V_MAX_PAIR
        v0 = np.floor(np.where(fits, v, 0.0)).astype(np.int64)
        unit_a = u64[aa]
        t = (bal.astype(np.uint64) * p64[aa] - v0.astype(np.uint64) * unit_a).view(np.int64)
        unit_i = unit_a.view(np.int64)
        q = np.floor_divide(t, unit_i)
        exact = v0 + q
        if val_mode == _CEIL:
            exact = exact + ((t - q * unit_i) != 0)
        value[ia] = exact
        ok[ia] = fits
    # 3: regime B, an interval around the value
    ib = np.nonzero(~in_a)[0]
    if len(ib):
        ab = a[ib]
        step = pu[ab] * (1.0 + REL)
        down, up = {_FLOOR: (1.0, 0.0), _CEIL: (0.0, 1.0), _HALF: (0.5, 0.5)}[bal_mode]
        if rest is None:
            y = s[ib] * g[ab]
            ylo = y - y * REL - down * step
            yhi = y + y * REL + up * step
            rlo = np.floor(ylo) if val_mode == _FLOOR else np.ceil(ylo)
            rhi = np.floor(yhi) if val_mode == _FLOOR else np.ceil(yhi)
            sure = (rlo == rhi) & (yhi < _V_MAX)
        else:
            # the amount as the exact pair (s, rest), g as a pair: a double-double product
            g_lo = np.array([_rest(i * p, RAY * u, gh) for i, p, u, gh in zip(index, price, unit, g.tolist())])
            p_, e_ = _two_prod(s[ib], g[ab])
            e_ = e_ + (s[ib] * g_lo[ab] + rest[ib] * g[ab])
            yh, yl = _fast_two_sum(p_, e_)
            slack = np.abs(yh) * _DD_REL
            lo_h, lo_l = _fast_two_sum(yh, yl - slack - down * step)
            hi_h, hi_l = _fast_two_sum(yh, yl + slack + up * step)
            fits = (np.abs(lo_h) < _V_MAX_PAIR) & (np.abs(hi_h) < _V_MAX_PAIR)
            lo_h, lo_l = np.where(fits, lo_h, 0.0), np.where(fits, lo_l, 0.0)
            hi_h, hi_l = np.where(fits, hi_h, 0.0), np.where(fits, hi_l, 0.0)
            if val_mode == _FLOOR:
                rlo, rhi = _dd_floor(lo_h, lo_l), _dd_floor(hi_h, hi_l)
            else:
                rlo, rhi = -_dd_floor(-lo_h, -lo_l), -_dd_floor(-hi_h, -hi_l)
            sure = fits & (rlo == rhi)
        value[ib] = np.where(sure, np.maximum(rlo, 0.0), 0.0).astype(np.int64)
        ok[ib] = sure
    return value, ok


def _divmod_pair(a: np.ndarray, b: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``divmod(a * 2**26 + b, d)`` in int64 for ``0 <= a, b < 2**62``, ``0 < d < 2**53`` and a quotient
    below ``2**63``: long division of ``a`` by ``d``, then of the remainder in steps of 2**10, 2**10 and
    2**6 (each ``r * 2**k < 2**63``), then ``b`` added to the last remainder (below ``2**63``)."""
    q, r = np.divmod(a, d)
    for k in (10, 10, 6):
        r = r << k
        digit, r = np.divmod(r, d)
        q = (q << k) + digit
    extra, r = np.divmod(r + b, d)
    return q + extra, r


def account_sums(rules: RevisionRules, *, scaled_a: np.ndarray, scaled_d: np.ndarray, counts: np.ndarray,
                 row_asset: np.ndarray, row_lt: np.ndarray, seg_starts: np.ndarray, seg_counts: np.ndarray,
                 income: Sequence[int], debt_index: Sequence[int], prices: Sequence[int],
                 decimals: Sequence[int], scaled_a_rest: np.ndarray | None = None,
                 scaled_d_rest: np.ndarray | None = None) -> AccountSums:
    """Exact totals and health factor of a batch of users (see the module docstring).

    Rows are grouped by user: user ``i`` owns rows ``seg_starts[i] .. seg_starts[i] + seg_counts[i]``
    of the row arrays (``seg_counts[i] >= 1``). Per row: the scaled aToken balance and scaled
    variable debt (float64; a row borrows when its scaled debt is non-zero), whether it counts as
    collateral (the user's flag and the revision's rule), its asset number and its liquidation
    threshold in bps for this user (eMode applied). Per asset number: normalized income and debt
    (ray), price (base units) and decimals. Unsupported inputs leave every user unsure.
    """
    n_users = len(seg_starts)
    none = AccountSums(np.zeros(n_users, np.int64), np.zeros(n_users, np.int64), np.zeros(n_users, np.int64),
                       np.zeros(n_users, bool))
    modes = _modes(rules)
    if (modes is None or n_users == 0 or (seg_counts < 1).any()
            or any(not 0 <= p < 2**62 for p in prices) or any(not 0 <= d <= 18 for d in decimals)):
        return none
    a_mode, v_mode, cval_mode, dval_mode = modes
    coll_v, coll_ok = _values(scaled_a, row_asset, income, prices, decimals, a_mode, cval_mode, scaled_a_rest)
    debt_v, debt_ok = _values(scaled_d, row_asset, debt_index, prices, decimals, v_mode, dval_mode, scaled_d_rest)
    borrowing = scaled_d != 0
    coll_v = np.where(counts, coll_v, 0)
    debt_v = np.where(borrowing, debt_v, 0)
    lt = row_lt.astype(np.int64)
    row_ok = (coll_ok | ~counts) & (debt_ok | ~borrowing)
    # sum(value * LT) as A * 2**26 + B, both exact in int64 (value < 2**51, LT < 2**14)
    coll_ok_v = np.where(row_ok, coll_v, 0)
    a_part = np.add.reduceat((coll_ok_v >> 26) * lt, seg_starts)
    b_part = np.add.reduceat((coll_ok_v & (2**26 - 1)) * lt, seg_starts)
    user_ok = np.logical_and.reduceat(row_ok, seg_starts)
    total_c = np.add.reduceat(coll_v, seg_starts)
    total_d = np.add.reduceat(debt_v, seg_starts)
    user_ok &= (total_c < _SUM_MAX) & (total_d < _SUM_MAX) & (total_d > 0) & (lt <= 10_000).all()
    d = np.where(user_ok, total_d, 1)
    a_part = np.where(user_ok, a_part, 0)
    b_part = np.where(user_ok, b_part, 0)
    if rules.health_factor_from_weighted_lt_sum:
        user_ok &= a_part // d < 2**30  # the quotient stays below 2**57 (a health factor above 9e4 is left)
        a_part, b_part = np.where(user_ok, a_part, 0), np.where(user_ok, b_part, 0)
        q, r = _divmod_pair(a_part, b_part, d)
    else:
        c_safe = np.where(user_ok & (total_c > 0), total_c, 1)
        user_ok &= a_part // c_safe < 2**30
        a_part, b_part = np.where(user_ok, a_part, 0), np.where(user_ok, b_part, 0)
        avg, _ = _divmod_pair(a_part, b_part, c_safe)  # a weighted mean of LTs: at most 1e4
        avg = np.where(total_c > 0, avg, 0)
        c_hi, c_lo = np.divmod(np.where(user_ok, total_c, 0), 10_000)
        x = c_hi * avg + (c_lo * avg + 5_000) // 10_000  # percentMul(C, avg), exact
        q, r = np.divmod(x, d)
    frac = np.zeros(n_users, dtype=np.int64)
    for _ in range(6):
        r = r * 1000
        digit, r = np.divmod(r, d)
        frac = frac * 1000 + digit
    frac = frac + (r + d // 2 >= d)
    if rules.health_factor_from_weighted_lt_sum:
        user_ok &= q <= 90_000
        hf = np.where(user_ok, q, 0) * 10**14 + frac // 10_000
    else:
        user_ok &= q <= 8
        hf = np.where(user_ok, q, 0) * _WAD + frac
    return AccountSums(total_c, total_d, hf, user_ok)
