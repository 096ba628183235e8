"""Text that comes from the chain (an ERC-20 symbol, an eMode label) is shown inert in every format.

A token's `symbol()` is whatever its deployer chose: HTML, quotes, Markdown, a spreadsheet formula,
10 kB. The report shows it as text, never as markup, a formula or a broken table.
"""

from __future__ import annotations

import csv
import json

import pytest

from postmortem.reports.api import build_and_write
from postmortem.reports.reader import DISPLAY_TEXT_MAX, display_text

import helpers.synthetic as syn
from helpers.synthetic import documented_schemas  # noqa: F401 (autouse: the documented tables)

HOSTILE = {
    "html": '<script>alert(1)</script><img src=x onerror="alert(2)">',
    "markdown": "cb|ETH` ** [x](javascript:alert(3)) <b>bold</b>",
    "formula": '=HYPERLINK("http://evil.example","click")',
    "long": "A" * 10_000,
}
MARKUP = set("<>&\"'`|*[]")


def test_display_text_keeps_real_symbols_and_neutralises_markup():
    for real in ("wstETH", "USDC.e", "USD₮0", "sUSDe", "PT-eUSDE-29MAY2025", "GHO", "cbBTC", "eBTC/ETH (LP)"):
        assert display_text(real) == real
    assert display_text("<b>x</b>") == "?b?x?/b?"
    assert len(display_text("A" * 10_000)) == DISPLAY_TEXT_MAX and display_text("A" * 10_000).endswith("…")
    assert display_text(None) is None and display_text(7) == 7


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_symbol_is_inert_in_every_format(kind, tmp_path, monkeypatch):
    text = HOSTILE[kind]
    monkeypatch.setitem(syn.SYMBOLS, syn.CBETH, text)
    specs = syn.default_specs()
    assert any(s.debt_asset == syn.CBETH for s in specs), "the synthetic incident must repay cbETH debt"
    syn.build_warehouse(tmp_path / "wh", specs)
    out = tmp_path / "report"
    build_and_write(tmp_path / "wh", syn.INCIDENT, out_dir=out)
    shown = display_text(text)
    assert not MARKUP & set(shown) and len(shown) <= DISPLAY_TEXT_MAX

    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    doc = json.loads((out / "report.json").read_text())
    for name, body in (("html", html), ("md", md)):
        assert shown in body, f"the symbol is shown in the {name}"
        assert text not in body, f"the raw symbol in the {name}"
    assert "<script" not in html.lower() and "<img" not in html.lower()
    for raw in ("<script", "<img", "<b>", "cb|ETH"):
        assert raw not in md
    strings = list(_strings(doc))
    assert any(shown in s for s in strings) and not any(text in s for s in strings)
    with open(out / "reimbursements.csv", newline="") as f:
        for row in csv.reader(f):
            for cell in row:
                assert not cell.startswith(("=", "+", "@")), f"a CSV cell a spreadsheet would run: {cell[:40]!r}"
