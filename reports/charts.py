"""Inline SVG charts, drawn by hand: no libraries, no scripts, no external fonts or URLs.

Three charts, each a pure function from display values (floats are fine here: charts are for
the eye; every exact number is in the tables and the JSON) to an SVG string:

* ``price_chart``: reported and true price of the mispriced asset as step lines over time (or
  blocks), the mispriced stretch shaded, every liquidation marked (colour and shape by verdict);
* ``hf_chart``: the health factor just before each liquidation at both prices, with HF = 1;
* ``loss_bars``: stacked horizontal bars of what each borrower lost (or is owed).

Honest on every screen: each axis has a title with its unit, and a value axis that does not
start at 0 says where it starts and carries a break mark; the time axis is true to time, and a
long quiet gap is cut out *and marked* rather than drawn as one block; every kind of mark has a
key; labels sit in margins or rows of their own, never on the marks (the browser test measures
this). Every chart carries ``<title>``/``<desc>`` for screen readers and ``<title>`` tooltips on
data marks, which carry ``class="mark"``. Sizes are in a fixed ``viewBox`` and the SVG scales to
its container's width; the HTML draws each chart twice, at ``WIDE`` and ``NARROW``, and shows the
one that fits the screen, so text stays readable on a phone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from postmortem.reports.chart_price import BREAK_MIN_S, BREAK_PX, Mark, PricePoint, price_chart
from postmortem.reports.svg import (
    FONT,
    GRID,
    INK,
    LIQUIDATABLE,
    MUTED,
    NARROW,
    PART_COLOURS,
    REPORTED,
    TRUE,
    VERDICT_COLOURS,
    VERDICT_LABELS,
    WIDE,
    WINDOW,
    _Labels,
    _round_range,
    _Svg,
    _text_width,
    _tick_text,
    nice_ticks,
)

# The drawing kit is ``reports.svg`` and the price chart ``reports.chart_price``; their public names
# are re-exported here, so ``charts.price_chart``, ``charts.WIDE``... keep working.
__all__ = ["BREAK_MIN_S", "BREAK_PX", "FONT", "GRID", "HF_TOP", "HFItem", "INK", "LIQUIDATABLE", "LossBar", "LossChart",
           "MUTED", "Mark", "NARROW", "PART_COLOURS", "PricePoint", "REPORTED", "TRUE", "VERDICT_COLOURS",
           "VERDICT_LABELS", "WIDE", "WINDOW", "hf_chart", "loss_bars", "nice_ticks", "price_chart"]

# --- health factor before each liquidation ------------------------------------------------------


@dataclass(frozen=True)
class HFItem:
    label: str  # short x label (the liquidation's number)
    reported: float
    true: float
    verdict: str
    tooltip: str


HF_TOP = 3.0  # an HF above this (1e59 with no debt) is drawn hollow at the top, or it would flatten the rest


def hf_chart(items: list[HFItem], *, chart_id: str, title: str, width: int = WIDE, height: int | None = None) -> str:
    """Health factor before each liquidation at the reported price (circle) and the true price (diamond)."""
    height = height or (340 if width >= 600 else 400)
    desc = (f"For each of {len(items)} liquidations, in chain order, the health factor just before it at the "
            "reported price and at the true price; the dashed line is HF = 1, below which a position can be "
            "liquidated. The coloured tick under each liquidation is its verdict.")
    svg = _Svg(width, height, chart_id, title, desc)
    left, right, top, bottom = 56, 52, 16, 50
    if not items:
        svg.text(width / 2, height / 2, "no liquidations", anchor="middle", fill=MUTED)
        return svg.render()
    items = [HFItem(it.label, it.reported if not math.isnan(it.reported) else math.inf,
                    it.true if not math.isnan(it.true) else math.inf, it.verdict, it.tooltip) for it in items]
    finite = [v for it in items for v in (it.reported, it.true) if math.isfinite(v)]
    vmin, vmax = min(finite + [1.0]), max(finite + [1.0])
    vmin, vmax = max(0.0, vmin), min(vmax, HF_TOP)
    pad = (vmax - vmin) * 0.1 or 0.01
    vmin, vmax, yt = _round_range(max(0.0, vmin - pad), vmax + pad, 5)
    clipped = lambda v: not (vmin <= v <= vmax)  # noqa: E731
    legend = [("circle", REPORTED, "HF at the reported price"), ("diamond", TRUE, "HF at the true price"),
              ("band", LIQUIDATABLE, "liquidatable (HF < 1)")]
    if any(clipped(v) for it in items for v in (it.reported, it.true)):
        legend.append(("hollow-circle", MUTED, f"hollow: off the scale (above {vmax:g}, or no debt)"))
    for verdict in ("wrongly_eligible", "eligible_anyway", "anomaly"):
        if any(it.verdict == verdict for it in items):
            legend.append(("tick", VERDICT_COLOURS[verdict], f"tick: {VERDICT_LABELS[verdict]}"))
    top = svg.legend(legend, left, top + 6, width - 8) + 8
    svg.text(8, top + 6, "health factor, no unit" + (f" (axis from {vmin:g}, not 0)" if vmin > 0 else ""),
             size=11.5, weight="600", baseline="central")
    top += 22
    plot_w, plot_h = width - left - right, height - top - bottom
    y = lambda v: top + (vmax - min(max(v, vmin), vmax)) / (vmax - vmin) * plot_h  # noqa: E731
    band = plot_w / len(items)
    x = lambda i: left + band * (i + 0.5)  # noqa: E731
    svg.rect(left, y(1.0), plot_w, top + plot_h - y(1.0), LIQUIDATABLE, opacity=0.7)
    for t in yt:
        svg.line(left, y(t), left + plot_w, y(t), GRID)
        svg.text(left - 8, y(t), _tick_text(t, yt), size=11, anchor="end", fill=MUTED, baseline="central")
    svg.line(left, top, left, top + plot_h, INK)
    if vmin > 0:
        svg.axis_break_y(left, top + plot_h - 8)
    svg.line(left, y(1.0), left + plot_w, y(1.0), INK, 1.5, "6 4")
    svg.text(left + plot_w + 6, y(1.0), "HF = 1", size=11, fill=INK, weight="600", baseline="central")
    r = max(2.5, min(6.0, band / 3.2))
    widest = max(_text_width(it.label, 11) for it in items) + 6
    every = max(1, math.ceil(widest / band))
    for i, it in enumerate(items):
        cx = x(i)
        if math.isfinite(it.reported) and math.isfinite(it.true):
            svg.line(cx, y(it.reported), cx, y(it.true), MUTED, 1.2)
        svg.marker("circle", cx, y(it.reported), r, REPORTED, it.tooltip, hollow=clipped(it.reported))
        svg.marker("diamond", cx, y(it.true), r, TRUE, it.tooltip, hollow=clipped(it.true))
        half = max(1.0, min(band * 0.35, 6))
        svg.rect(cx - half, top + plot_h + 3, 2 * half, 4, VERDICT_COLOURS.get(it.verdict, MUTED),
                 tooltip=VERDICT_LABELS.get(it.verdict, it.verdict), mark=True)
        if i % every == 0:
            svg.text(cx, top + plot_h + 20, it.label, size=11, anchor="middle", fill=MUTED)
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, INK)
    svg.text(left + plot_w / 2, height - 8, "liquidation number, in chain order", size=11, anchor="middle", fill=MUTED)
    return svg.render()


# --- losses per borrower ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LossBar:
    label: str
    parts: tuple[float, ...]  # one value per part name, same order for every bar
    value_label: str
    tooltip: str


@dataclass
class LossChart:
    part_names: tuple[str, ...]
    bars: list[LossBar] = field(default_factory=list)


def _amount(v: float, unit: str) -> str:
    """A display amount with three significant digits below 1 (``0.0042 ETH``), two decimals above."""
    if v == 0 or abs(v) >= 1:
        return f"{v:,.2f} {unit}"
    return f"{v:.{max(2, 2 - math.floor(math.log10(abs(v))))}f} {unit}"


def loss_bars(chart: LossChart, *, chart_id: str, title: str, unit: str = "ETH", width: int = WIDE,
              max_bars: int = 30, what: str = "owed") -> str:
    """Stacked horizontal bars, largest first; beyond ``max_bars`` the rest are summed into one bar."""
    bars = list(chart.bars)
    if len(bars) > max_bars:
        rest = bars[max_bars - 1:]
        summed = tuple(sum(b.parts[i] for b in rest) for i in range(len(chart.part_names)))
        bars = bars[:max_bars - 1] + [LossBar(f"{len(rest)} others", summed, _amount(sum(summed), unit),
                                              f"{len(rest)} more borrowers")]
    row_h = 24
    left = int(max([_text_width(b.label, 11.5) for b in bars] + [60]) + 16)
    right = int(max([_text_width(b.value_label, 11) for b in bars] + [40]) + 16)
    legend_items = [("band", PART_COLOURS[i % len(PART_COLOURS)], name) for i, name in enumerate(chart.part_names)]
    probe = _Svg(width, 10, chart_id, title, "")
    top = probe.legend(legend_items, 8, 22, width - 8) + 8 + 22
    height = int(top + max(1, len(bars)) * row_h + 44)
    desc = f"One bar per borrower ({len(chart.bars)} in all), largest first, split into {', '.join(chart.part_names)}."
    svg = _Svg(width, height, chart_id, title, desc)
    svg.legend(legend_items, 8, 22, width - 8)
    if not bars:
        svg.text(width / 2, top + 20, "no losses", anchor="middle", fill=MUTED)
        return svg.render()
    svg.text(left - 8, top - 14, "borrower", size=11.5, anchor="end", weight="600", baseline="central")
    plot_w = width - left - right
    vmax = max(sum(b.parts) for b in bars) or 1.0
    ticks = nice_ticks(0, vmax, max(2, min(5, int(plot_w // 90))))
    vmax = max(vmax, ticks[-1] if ticks else vmax)
    x = lambda v: left + v / vmax * plot_w  # noqa: E731
    bottom = top + len(bars) * row_h
    row = _Labels()
    for t in ticks:
        label = _tick_text(t, ticks)
        svg.line(x(t), top - 4, x(t), bottom, GRID)
        if row.fits(x(t), label, 11):
            row.take(x(t), label, 11)
            svg.text(x(t), bottom + 16, label, size=11, anchor="middle", fill=MUTED)
    svg.text(left + plot_w / 2, bottom + 34, f"{what}, {unit}", size=11, anchor="middle", fill=MUTED)
    for i, b in enumerate(bars):
        y0 = top + i * row_h
        svg.text(left - 8, y0 + row_h / 2, b.label, size=11.5, anchor="end", baseline="central")
        acc = 0.0
        for j, v in enumerate(b.parts):
            if v > 0:
                svg.rect(x(acc), y0 + 4, x(acc + v) - x(acc), row_h - 8, PART_COLOURS[j % len(PART_COLOURS)],
                         tooltip=f"{b.tooltip}: {chart.part_names[j]} {v:,.4f} {unit}", mark=True)
            acc += v
        svg.text(x(acc) + 6, y0 + row_h / 2, b.value_label, size=11, fill=INK, baseline="central")
    svg.line(left, top - 4, left, bottom, INK)
    return svg.render()
