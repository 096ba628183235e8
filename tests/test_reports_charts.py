"""The hand-drawn SVG charts: well-formed, accessible, and drawing what they are given."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from postmortem.reports import charts, fmt

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


def texts(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{NS}text"))


def test_a_long_quiet_gap_is_cut_from_the_time_axis_and_marked():
    """An hour between two blocks must not squeeze the minutes with the liquidations into a sliver."""
    t0 = 1_773_139_571
    times = {0: t0, **{b: t0 + 3600 + (b - 1) * 12 for b in range(1, 21)}}
    pts = [charts.PricePoint(b, 2387.89 if 5 <= b <= 15 else 2457.70, 2457.70, times[b]) for b in range(21)]
    marks = [charts.Mark(b, 2387.89, "wrongly_eligible", f"#{b}", times[b]) for b in (5, 8, 12)]
    root = parse(charts.price_chart(pts, marks, chart_id="g", title="gap", window=(5, 15)))
    words = [t.text for t in texts(root)]
    assert "1 h 00 min cut" in words
    assert any(w.startswith("time, UTC (2026-03-10)") and "// marks time cut out" in w for w in words), words
    _, reported = series(root)
    m = re.fullmatch(r"M([\d.]+),[\d.]+H([\d.]+)V[\d.]+H([\d.]+)V[\d.]+H([\d.]+)", reported)
    assert m, reported
    start, down, up, _end = map(float, m.groups())
    # Before the dip: the cut hour (drawn as the break) and 48 s; the dip: 132 s. Widths true to time.
    assert abs((up - down) / (down - start - charts.BREAK_PX) - 132 / 48) < 0.05, (start, down, up)
    # Block numbers are used, with no cut, when a point has no timestamp.
    plain = parse(charts.price_chart([charts.PricePoint(p.block, p.reported, p.true) for p in pts], [],
                                     chart_id="b", title="blocks"))
    assert "block number" in [t.text for t in texts(plain)] and not any("cut" in (t.text or "") for t in texts(plain))


def test_every_axis_has_a_title_with_its_unit_and_says_where_it_starts():
    pts = [charts.PricePoint(b, 2387.89 if 10 <= b <= 20 else 2457.70, 2457.70) for b in range(41)]
    price = [t.text for t in texts(parse(charts.price_chart(pts, [], chart_id="p", title="t", unit="USD per wstETH")))]
    assert any(re.fullmatch(r"price, USD per wstETH \(axis from \$2,\d{3}, not 0\)", w) for w in price), price
    assert "−2.84%" in price  # the gap, in %, beside its bracket
    hf = [t.text for t in texts(parse(charts.hf_chart([charts.HFItem("1", 0.985, 1.017, "wrongly_eligible", "a")],
                                                       chart_id="h", title="t")))]
    assert any(w.startswith("health factor, no unit (axis from 0.9") for w in hf), hf
    assert "liquidation number, in chain order" in hf
    chart = charts.LossChart(("oracle part", "bonus part"), [charts.LossBar("u1", (1.0, 0.5), "1.5 ETH", "user 1")])
    loss = [t.text for t in texts(parse(charts.loss_bars(chart, chart_id="l", title="t")))]
    assert "owed, ETH" in loss and "borrower" in loss


def test_every_kind_of_mark_has_a_key():
    items = [charts.HFItem("1", 0.985, 1.017, "wrongly_eligible", "a"), charts.HFItem("2", math.inf, 1.2, "anomaly", "b")]
    hf = [t.text for t in texts(parse(charts.hf_chart(items, chart_id="h", title="t")))]
    assert {"tick: wrongly eligible", "tick: anomaly", "HF at the reported price", "HF at the true price"} <= set(hf)
    assert "tick: eligible anyway" not in hf  # no key for a mark that is not drawn
    assert any(w.startswith("hollow: off the scale") for w in hf)
    pts = [charts.PricePoint(b, 2387.89 if 10 <= b <= 20 else 2457.70, 2457.70) for b in range(41)]
    marks = [charts.Mark(11, 2387.89, "eligible_anyway", "x"), charts.Mark(12, 2387.89, "anomaly", "y")]
    price = [t.text for t in texts(parse(charts.price_chart(pts, marks, chart_id="p", title="t", window=(10, 20))))]
    assert {"true price", "reported price", "mispriced", "liquidation: eligible anyway", "liquidation: anomaly",
            "largest gap, reported vs true"} <= set(price)


def test_the_threshold_label_sits_beside_the_plot_not_on_the_marks():
    items = [charts.HFItem(str(i), 0.99, 1.01, "wrongly_eligible", f"#{i}") for i in range(1, 50)]
    root = parse(charts.hf_chart(items, chart_id="h", title="t"))
    label = next(t for t in texts(root) if t.text == "HF = 1")
    right_of_marks = max(float(c.get("cx")) + float(c.get("r")) for c in root.iter(f"{NS}circle") if c.get("class") == "mark")
    assert float(label.get("x")) > right_of_marks


@pytest.mark.parametrize("width", [charts.WIDE, charts.NARROW])
def test_text_stays_inside_the_chart_at_both_widths(width):
    """A static estimate (the browser test measures the real boxes): no label starts or ends off the viewBox."""
    t0 = 1_773_139_571
    pts = [charts.PricePoint(b, 2387.89 if 5 <= b <= 15 else 2457.70, 2457.70, t0 + b * 12 + (3600 if b else 0))
           for b in range(21)]
    marks = [charts.Mark(b, 2387.89, "wrongly_eligible", f"#{b}", t0 + b * 12 + 3600) for b in (5, 8, 12)]
    hf = [charts.HFItem(str(i), 0.98, 1.01, "wrongly_eligible", "a") for i in range(1, 50)]
    loss = charts.LossChart(("oracle part", "bonus part"),
                            [charts.LossBar("0xbf06…b79b", (186.13, 63.05), "249.18 ETH", "u"),
                             charts.LossBar("0x8211…1b66", (0.001, 0.0005), "0.0015 ETH", "v")])
    for svg in (charts.price_chart(pts, marks, chart_id="p", title="t", window=(5, 15), width=width, unit="USD per wstETH"),
                charts.hf_chart(hf, chart_id="h", title="t", width=width),
                charts.loss_bars(loss, chart_id="l", title="t", width=width)):
        root = parse(svg)
        assert root.get("viewBox") == f"0 0 {width} {root.get('viewBox').split()[3]}"
        for t in texts(root):
            w = charts._text_width(t.text, float(t.get("font-size")))
            x = float(t.get("x"))
            x0 = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor")]
            assert 0 <= x0 and x0 + w <= width, (width, t.text, x0, x0 + w)
