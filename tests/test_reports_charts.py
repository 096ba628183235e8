"""The hand-drawn SVG charts: well-formed, accessible, and drawing what they are given."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from reports import charts, fmt

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{NS}svg" and root.get("role") == "img" and root.get("viewBox")
    assert root.find(f"{NS}title") is not None and root.find(f"{NS}desc") is not None
    return root


def test_nice_ticks():
    assert charts.nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert charts.nice_ticks(0.95, 1.03, 4) == [0.95, 0.975, 1.0, 1.025]
    assert charts.nice_ticks(2387.9, 2457.7, 5)[0] >= 2387.9
    assert charts.nice_ticks(5, 5) == [5]


def test_price_chart_steps_only_where_the_price_changes():
    pts = [charts.PricePoint(b, 2387.89 if 10 <= b <= 20 else 2457.70, 2457.70) for b in range(0, 41)]
    marks = [charts.Mark(10, 2387.89, "wrongly_eligible", "#1"), charts.Mark(10, 2387.89, "wrongly_eligible", "#2"),
             charts.Mark(12, 2387.89, "eligible_anyway", "#3"), charts.Mark(14, 2387.89, "anomaly", "#4")]
    svg = charts.price_chart(pts, marks, chart_id="p", title="price", window=(10, 20))
    root = parse(svg)
    true, reported = series(root)
    assert reported.count("V") == 2  # down at block 10, back up at block 21; nothing in between
    assert "V" not in true
    circles = list(root.iter(f"{NS}circle"))
    # Two liquidations in block 10 sit side by side, not on top of each other.
    xs = sorted(float(c.get("cx")) for c in circles if c.find(f"{NS}title") is not None)
    assert len(xs) == 2 and xs[0] < xs[1]
    titles = [t.text for t in root.iter(f"{NS}title")]
    assert {"#1", "#2", "#3", "#4"} <= set(titles)


def series(root: ET.Element) -> tuple[str, str]:
    """The true and the reported price lines' path data; fails unless both are drawn, edge to edge."""
    found = {p.get("class"): p.get("d") for p in root.iter(f"{NS}path") if (p.get("class") or "").startswith("series-")}
    assert set(found) == {"series-true", "series-reported"}, found
    for d in found.values():
        m = re.fullmatch(r"M([\d.]+),([\d.]+)((?:H[\d.]+V[\d.]+)*)H([\d.]+)", d)
        assert m, d
        assert float(m.group(4)) - float(m.group(1)) > 300  # a line across the plot, not a dot
    return found["series-true"], found["series-reported"]


def test_price_chart_zoom_keeps_the_value_in_force_at_its_left_edge():
    pts = [charts.PricePoint(0, 1.0, 2.0), charts.PricePoint(100, 1.5, 2.0)]
    root = parse(charts.price_chart(pts, [], chart_id="z", title="zoom", x_range=(50, 60)))
    true, reported = series(root)
    y = lambda d: float(d[1:].split(",")[1].split("H")[0])  # noqa: E731
    assert y(reported) > y(true)  # 1.0 (in force since block 0) drawn below 2.0 from the left edge
    assert "V" not in reported  # the change at block 100 is outside the zoom


def test_the_path_check_fails_when_no_line_is_drawn():
    empty = charts.price_chart([], [], chart_id="n", title="none")
    with pytest.raises(AssertionError):
        series(parse(empty))


def test_hf_chart_marks_both_prices_and_the_threshold():
    items = [charts.HFItem("1", 0.985, 1.017, "wrongly_eligible", "a"),
             charts.HFItem("2", 0.95, 0.98, "eligible_anyway", "b"),
             charts.HFItem("3", float("inf"), 1.2, "anomaly", "c"),
             charts.HFItem("4", float("nan"), 1.1, "anomaly", "d")]
    svg = charts.hf_chart(items, chart_id="h", title="hf")
    root = parse(svg)
    assert "HF = 1" in svg
    assert len([c for c in root.iter(f"{NS}circle") if c.find(f"{NS}title") is not None]) == 4
    assert len([p for p in root.iter(f"{NS}polygon") if p.find(f"{NS}title") is not None]) == 4
    assert not re.search(r'[="\s,](-?nan|-?inf)\b', svg)
    for el in root.iter():
        for attr in ("x", "y", "cx", "cy", "x1", "y1", "x2", "y2", "width", "height"):
            if el.get(attr) is not None:
                assert math.isfinite(float(el.get(attr)))


def test_loss_bars_sum_the_tail():
    chart = charts.LossChart(("oracle loss", "bonus loss"))
    for i in range(40):
        chart.bars.append(charts.LossBar(f"u{i}", (40.0 - i, 1.0), f"{41 - i} ETH", f"user {i}"))
    svg = charts.loss_bars(chart, chart_id="l", title="losses", max_bars=30)
    parse(svg)
    assert "11 others" in svg and "u28" in svg and "u29" not in svg


def test_empty_charts_say_so():
    assert "no liquidations" in charts.hf_chart([], chart_id="e1", title="t")
    assert "no losses" in charts.loss_bars(charts.LossChart(("a",)), chart_id="e2", title="t")
    assert "no price data" in charts.price_chart([], [], chart_id="e3", title="t")


def test_text_is_escaped():
    svg = charts.hf_chart([charts.HFItem("<1>", 0.9, 1.1, "wrongly_eligible", 'a "b" & <c>')], chart_id="x", title="A & B")
    parse(svg)
    assert "&lt;1&gt;" in svg and "A &amp; B" in svg


def test_display_formatting_is_exact():
    assert fmt.units(10_938_590_000_000_000_000_000, 18, 2) == "10,938.59"
    assert fmt.units(5, 18, 18) == "0.000000000000000005"
    assert fmt.units(-15, 1, 0) == "-2"  # half away from zero
    assert fmt.units(2**256 - 1, 18, 2).endswith(".58")  # no float anywhere
    assert fmt.exact_units(1, 18) == "0.000000000000000001" and fmt.exact_units(-10**18, 18) == "-1.000000000000000000"
    assert fmt.usd(76_454_647_201_680) == "$764,546" and fmt.usd(-150) == "$0" and fmt.usd(-1_50000000) == "-$2"
    assert fmt.wad(2**256 - 1) == "∞" and fmt.wad(985 * 10**15) == "0.9850"
    assert fmt.ratio(238_789_375_200, 200_000_000_000) == "1.193946876"
    assert fmt.percent_change(97, 100) == "-3.00%" and fmt.ppm_to_percent(-28402) == "-2.84%"
    assert fmt.utc(1_773_143_171) == "2026-03-10 11:46:11 UTC"
    assert fmt.duration(84) == "84 s" and fmt.duration(252) == "4 min 12 s" and fmt.duration(7_380) == "2 h 03 min"
