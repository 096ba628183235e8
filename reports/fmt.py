"""Display formatting shared by the renderers: exact integers in, human text out.

Amounts reach this module as Python ints in their raw unit (token base units, wei, Aave base
currency units of 1e8 per USD, wad health factors). Conversion to a decimal string is done with
integer arithmetic, so what a reader sees is the exact value rounded once, half up, at the last
shown digit; nothing goes through a float.
"""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

WAD = 10**18
BASE_DECIMALS = 8  # Aave v3 base currency on Ethereum: 1e8 = 1 USD
ETH_DECIMALS = 18


def _round_half_up(q: Fraction) -> int:
    """Nearest integer to ``q``, halves away from zero (what a reader expects from a table)."""
    n, d = q.numerator, q.denominator
    sign = -1 if n < 0 else 1
    n = abs(n)
    return sign * ((2 * n + d) // (2 * d))


def units(value: int | None, decimals: int, places: int, *, grouping: bool = True) -> str:
    """``value`` raw units of a token with ``decimals`` shown with ``places`` decimals.

    ``units(10938590000000000000000, 18, 2) == "10,938.59"``; None gives an em dash.
    """
    if value is None:
        return "—"
    scaled = _round_half_up(Fraction(int(value) * 10**places, 10**decimals))
    sign = "-" if scaled < 0 else ""
    scaled = abs(scaled)
    whole, frac = divmod(scaled, 10**places)
    text = f"{whole:,}" if grouping else str(whole)
    if places:
        text += "." + str(frac).rjust(places, "0")
    return sign + text


def exact_units(value: int, decimals: int) -> str:
    """Every digit of ``value / 10**decimals``: ``exact_units(1, 18) == "0.000000000000000001"``.

    Trailing zeros are kept so a column of amounts has one fixed number of decimals.
    """
    value = int(value)
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{sign}{whole}" + (f".{str(frac).rjust(decimals, '0')}" if decimals else "")


def auto_places(value: int, decimals: int, places: int = 2, max_places: int = 6) -> int:
    """Decimals to show so a small amount is not displayed as zero: 2 for 1.0 and up, more below."""
    value = abs(int(value))
    if value == 0 or value >= 10**decimals:
        return places
    shown = places
    while shown < max_places and value * 10**shown < 10**decimals * 10:
        shown += 1
    return shown


def amount(value: int | None, decimals: int, places: int = 2, max_places: int = 6) -> str:
    """Like ``units`` with just enough decimals for small amounts: 0.0039, 12,943.59, <0.000001."""
    if value is None:
        return "—"
    p = auto_places(value, decimals, places, max_places)
    text = units(value, decimals, p)
    if int(value) != 0 and text.lstrip("-").strip("0.,") == "":
        return ("-" if int(value) < 0 else "") + "<" + "0." + "0" * (max_places - 1) + "1"
    return text


CHAIN_NAMES = {1: "Ethereum", 10: "Optimism", 137: "Polygon", 8453: "Base", 42161: "Arbitrum One",
               31337: "the local devchain (chain 31337)"}


def chain(chain_id: int) -> str:
    return CHAIN_NAMES.get(int(chain_id), f"chain {chain_id}")


def eth(wei: int | None, places: int = 4) -> str:
    """Wei as ETH for display, with the unit: ``"382.7600 ETH"``."""
    return "—" if wei is None else f"{units(wei, ETH_DECIMALS, places)} ETH"


def usd(base: int | None, places: int = 0) -> str:
    """Aave base currency units (1e8 = 1 USD) as dollars: ``"$26,012,345"``."""
    if base is None:
        return "—"
    text = units(base, BASE_DECIMALS, places)
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def token(value: int | None, decimals: int | None, symbol: str | None, places: int = 4) -> str:
    """A token amount with its symbol: ``"10,938.5900 wstETH"``; small amounts get more decimals."""
    if value is None:
        return "—"
    if decimals is None:
        return f"{int(value):,} raw units of {symbol or 'token'}"
    return f"{amount(value, decimals, places, max(places, 6))} {symbol or ''}".rstrip()


def eth_auto(wei: int | None, places: int = 2) -> str:
    """Wei as ETH with just enough decimals: ``"249.18 ETH"``, ``"0.0039 ETH"``."""
    return "—" if wei is None else f"{amount(wei, ETH_DECIMALS, places)} ETH"


def wad(value: int | None, places: int = 4) -> str:
    """A wad (1e18 = 1.0), e.g. a health factor: ``"0.9876"``. Max uint256 (no debt) is "∞"."""
    if value is None:
        return "—"
    if value >= 2**255:
        return "∞"
    return units(value, 18, places, grouping=False)


def ratio(numerator: int, denominator: int, places: int = 9) -> str:
    """``numerator / denominator`` as a decimal string with ``places`` decimals (half up)."""
    if not denominator:
        return "—"
    scaled = _round_half_up(Fraction(numerator * 10**places, denominator))
    return units(scaled, places, places, grouping=False)


def percent_change(new: int, old: int, places: int = 2) -> str:
    """``new`` relative to ``old`` as a signed percentage: ``percent_change(97, 100) == "-3.00%"``."""
    if not old:
        return "—"
    scaled = _round_half_up(Fraction((new - old) * 100 * 10**places, old))
    text = units(scaled, places, places, grouping=False)
    return ("+" + text if scaled > 0 else text) + "%"


def ppm_to_percent(ppm: int, places: int = 2) -> str:
    """Parts per million as a percentage: ``ppm_to_percent(-28400) == "-2.84%"``."""
    return units(ppm, 4, places, grouping=False) + "%"


def utc(ts: int | None) -> str:
    """Unix seconds as ``2026-03-10 11:46:11 UTC``."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(int(ts), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: int | None) -> str:
    """Seconds as ``84 s``, ``20 min 28 s`` or ``3 h 05 min``."""
    if seconds is None:
        return "—"
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    if s < 172800:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    return f"{s // 86400} d {(s % 86400) // 3600:02d} h"


def short(address: str | None, keep: int = 6) -> str:
    """``0x4f962bb0ea0785c539f8ab52a17f1f873ddc355f`` -> ``0x4f96…355f``."""
    if not address:
        return "—"
    if len(address) <= 2 + keep + 4:
        return address
    return f"{address[:keep]}…{address[-4:]}"


def count(n: int | None) -> str:
    return "—" if n is None else f"{int(n):,}"


def block(n: int | None) -> str:
    return "—" if n is None else f"{int(n):,}"


NOT_RECORDED = "not recorded"


def shown(value) -> str:
    """A recorded value for prose: ``None`` and empty text read "not recorded", never "None"."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return NOT_RECORDED
    return str(value)
