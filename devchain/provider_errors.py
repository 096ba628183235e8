"""What hosted providers answer when an ``eth_getLogs`` asks too much: their error texts, verbatim
in shape (see ``/work/shared/reference/rpc-providers.md``), for a range over the provider's block
cap and for an answer over its result cap. The fault proxy sends them; the range splitter's tests
read them, so both see one copy of each provider's words.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RANGE_CAP_STYLES", "RESULT_CAP_STYLES", "range_cap_error", "result_cap_error"]


def _k(n: int) -> str:
    return f"{n // 1000}K" if n >= 1000 and n % 1000 == 0 else str(n)


def _range_infura(n, lo, hi):
    return 200, -32602, f"range {hi - lo + 1} exceeds limit of {n}", None


def _range_alchemy(n, lo, hi):
    return 200, -32600, (
        f"You can make eth_getLogs requests with up to a {n} block range. Based on your parameters, "
        f"this block range should work: [{hex(lo)}, {hex(lo + n - 1)}]"
    ), None


def _range_quicknode(n, lo, hi):
    return 413, -32614, f"eth_getLogs is limited to a {n:,} range", None


def _range_ankr(n, lo, hi):
    return 200, -32600, "block range is too wide", None


def _range_max_block_range(n, lo, hi):
    return 200, -32000, f"query exceeds max block range {n}", None


def _range_max_is_k(n, lo, hi):
    size = f"{n // 1000}k" if n % 1000 == 0 else str(n)
    return 200, -32000, f"eth_getLogs range is too large, max is {size} blocks", None


def _range_limited_to(n, lo, hi):
    return 200, -32000, f"eth_getLogs is limited to {n} block range", None


def _range_larger_than(n, lo, hi):
    return 200, -32000, (
        f"block range is larger than max block range, block range = {hi - lo + 1}, max block range = {n}"
    ), None


RANGE_CAP_STYLES = {
    "infura": _range_infura,
    "alchemy": _range_alchemy,
    "quicknode": _range_quicknode,
    "ankr": _range_ankr,
    "max_block_range": _range_max_block_range,
    "max_is_k": _range_max_is_k,
    "limited_to": _range_limited_to,
    "larger_than": _range_larger_than,
}


def _result_infura(n, lo, hi):
    message = f"query returned more than {n} results. Try with this block range [0x{lo:X}, 0x{hi:X}]."
    return 200, -32005, message, {"from": f"0x{lo:X}", "limit": n, "to": f"0x{hi:X}"}


def _result_alchemy(n, lo, hi):
    return 200, -32602, (
        "Log response size exceeded. You can make eth_getLogs requests with up to a 2K block range and no "
        f"limit on the response size, or you can request any block range with a cap of {_k(n)} logs in the "
        "response. Based on your parameters and the response size limit, this block range should work: "
        f"[{hex(lo)}, {hex(hi)}]"
    ), None


def _result_alchemy_timeout(n, lo, hi):
    return 200, -32000, (
        "Query timeout exceeded. Consider reducing your block range. Based on your parameters and the "
        f"response size limit, this block range should work: [{hex(lo)}, {hex(hi)}]"
    ), None


def _result_ankr(n, lo, hi):
    return 200, -32000, "query exceeds max results", None


def _result_others(n, lo, hi):
    return 200, -32000, f"query exceeds max results {n}, retry with the range {lo}-{hi}", None


RESULT_CAP_STYLES = {
    "infura": _result_infura,
    "alchemy": _result_alchemy,
    "alchemy_timeout": _result_alchemy_timeout,
    "ankr": _result_ankr,
    "others": _result_others,
}


def range_cap_error(style: str, max_range: int, from_block: int, to_block: int) -> tuple[int, int, str, Any]:
    """(http_status, code, message, data) a provider of ``style`` answers for a range over its cap."""
    return RANGE_CAP_STYLES[style](int(max_range), from_block, to_block)


def result_cap_error(style: str, max_results: int, from_block: int, suggested_to: int) -> tuple[int, int, str, Any]:
    """(http_status, code, message, data) for too many results; the suggested range is
    ``[from_block, suggested_to]`` (inclusive)."""
    return RESULT_CAP_STYLES[style](int(max_results), from_block, suggested_to)
