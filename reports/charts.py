"""Inline SVG charts, drawn by hand: no libraries, no scripts, no external fonts or URLs.

Three charts, each a pure function from display values (floats are fine here: charts are for
the eye; every exact number is in the tables and the JSON) to an SVG string:

* ``price_chart``: reported and true price of the mispriced asset as step lines over blocks,
  the mispriced stretch shaded, every liquidation marked (colour and shape by verdict);
* ``hf_chart``: the health factor just before each liquidation at both prices, with HF = 1;
* ``loss_bars``: stacked horizontal bars of what each borrower lost (or is owed).

Every chart carries ``<title>``/``<desc>`` for screen readers and ``<title>`` tooltips on marks.
Sizes are in a fixed ``viewBox`` and the SVG scales to its container's width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
INK = "#1f2937"
MUTED = "#6b7280"
GRID = "#e5e7eb"
REPORTED = "#c2410c"
TRUE = "#1d4ed8"
WINDOW = "#fde68a"
LIQUIDATABLE = "#fee2e2"
VERDICT_COLOURS = {"wrongly_eligible": "#b91c1c", "eligible_anyway": "#6b7280", "anomaly": "#7c3aed"}
VERDICT_LABELS = {"wrongly_eligible": "wrongly eligible", "eligible_anyway": "eligible anyway", "anomaly": "anomaly"}
PART_COLOURS = ("#b91c1c", "#f59e0b", "#059669", "#6b7280")


def _n(x: float) -> str:
    """A coordinate with at most two decimals (keeps the SVG small and stable)."""
    text = f"{x:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _e(text: str) -> str:
    return escape(str(text), quote=True)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return []
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _tick_text(v: float, ticks: list[float], prefix: str = "", suffix: str = "") -> str:
    """A tick label with just enough decimals to tell neighbouring ticks apart."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    places = next((p for p in range(8) if abs(round(step * 10**p) - step * 10**p) < 1e-6), 8)
    return f"{prefix}{v:,.{places}f}{suffix}"


def _text_width(text: str, size: float) -> float:
    return len(text) * size * 0.58


class _Svg:
    def __init__(self, width: int, height: int, chart_id: str, title: str, desc: str):
        self.width, self.height = width, height
        self.id = chart_id
        self.parts: list[str] = []
        self.title, self.desc = title, desc

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, content: str, *, size: float = 12, anchor: str = "start",
             fill: str = INK, weight: str | None = None, baseline: str | None = None) -> None:
        extra = (f' font-weight="{weight}"' if weight else "") + (f' dominant-baseline="{baseline}"' if baseline else "")
        self.add(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}" fill="{fill}"{extra}>'
                 f"{_e(content)}</text>")

    def line(self, x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1, dash: str | None = None) -> None:
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{stroke}" '
                 f'stroke-width="{_n(width)}"{d}/>')

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tooltip: str | None = None, opacity: float | None = None) -> None:
        o = f' fill-opacity="{_n(opacity)}"' if opacity is not None else ""
        body = f"<title>{_e(tooltip)}</title>" if tooltip else ""
        self.add(f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" fill="{fill}"{o}>'
                 f"{body}</rect>" if body else
                 f'<rect x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" fill="{fill}"{o}/>')

    def marker(self, shape: str, x: float, y: float, r: float, fill: str, tooltip: str | None = None,
               hollow: bool = False) -> None:
        style = (f'fill="#ffffff" stroke="{fill}" stroke-width="2"' if hollow
                 else f'fill="{fill}" stroke="#ffffff" stroke-width="1.2"')
        body = f"<title>{_e(tooltip)}</title>" if tooltip else ""
        if shape == "square":
            el = f'<rect x="{_n(x - r)}" y="{_n(y - r)}" width="{_n(2 * r)}" height="{_n(2 * r)}" {style}>{body}</rect>'
        elif shape == "diamond":
            pts = f"{_n(x)},{_n(y - r * 1.25)} {_n(x + r * 1.25)},{_n(y)} {_n(x)},{_n(y + r * 1.25)} {_n(x - r * 1.25)},{_n(y)}"
            el = f'<polygon points="{pts}" {style}>{body}</polygon>'
        elif shape == "triangle":
            pts = f"{_n(x)},{_n(y - r * 1.3)} {_n(x + r * 1.2)},{_n(y + r)} {_n(x - r * 1.2)},{_n(y + r)}"
            el = f'<polygon points="{pts}" {style}>{body}</polygon>'
        else:
            el = f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" {style}>{body}</circle>'
        self.add(el)

    def legend(self, items: list[tuple[str, str, str]], x0: float, y0: float, max_x: float) -> float:
        """Draw (kind, colour, label) swatches left to right, wrapping; returns the y below them."""
        x, y = x0, y0
        for kind, colour, label in items:
            w = 22 + _text_width(label, 12) + 16
            if x + w > max_x and x > x0:
                x, y = x0, y + 18
            if kind in ("line", "dash"):
                self.line(x, y, x + 16, y, colour, 2.5, "5 3" if kind == "dash" else None)
            elif kind == "band":
                self.rect(x, y - 6, 16, 12, colour)
            else:
                self.marker(kind, x + 8, y, 4.5, colour)
            self.text(x + 22, y, label, size=12, baseline="central")
            x += w
        return y + 14

    def render(self) -> str:
        tid, did = f"{self.id}-title", f"{self.id}-desc"
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
                f'role="img" aria-labelledby="{tid} {did}" font-family="{_e(FONT)}" class="chart">'
                f'<title id="{tid}">{_e(self.title)}</title><desc id="{did}">{_e(self.desc)}</desc>'
                + "".join(self.parts) + "</svg>")


# --- price over the window --------------------------------------------------------------------------


@dataclass(frozen=True)
class PricePoint:
    block: int
    reported: float
    true: float


@dataclass(frozen=True)
class Mark:
    block: int
    price: float
    verdict: str
    tooltip: str


_VERDICT_SHAPES = {"wrongly_eligible": "circle", "eligible_anyway": "square", "anomaly": "triangle"}


def _step_path(points: list[tuple[int, float]], x, y, x_end: int) -> str:
    """A step line: each value holds from its block to the next change (only changes are emitted)."""
    if not points:
        return ""
    d = [f"M{_n(x(points[0][0]))},{_n(y(points[0][1]))}"]
    last = points[0][1]
    for block, value in points[1:]:
        if value != last:
            d.append(f"H{_n(x(block))}V{_n(y(value))}")
            last = value
    d.append(f"H{_n(x(x_end))}")
    return "".join(d)


def price_chart(points: list[PricePoint], marks: list[Mark], *, chart_id: str, title: str,
                window: tuple[int, int] | None = None, x_range: tuple[int, int] | None = None,
                width: int = 760, height: int = 340, currency: str = "$") -> str:
    """Reported vs true price over blocks with each liquidation marked.

    ``window`` (first, last mispriced block) is shaded; ``x_range`` (first, last block) zooms.
    Liquidations in the same block are spread across that block's width so none hides another.
    """
    points = sorted(points, key=lambda p: p.block)
    lo_b = x_range[0] if x_range else min([p.block for p in points] + [m.block for m in marks], default=0)
    hi_b = (x_range[1] if x_range else max([p.block for p in points] + [m.block for m in marks], default=0)) + 1
    # The value in force at the left edge comes from the last point at or before it.
    before = [p for p in points if p.block <= lo_b]
    shown = ([PricePoint(lo_b, before[-1].reported, before[-1].true)] if before else []) + \
            [p for p in points if lo_b < p.block < hi_b]
    shown_marks = [m for m in marks if lo_b <= m.block < hi_b]
    values = [v for p in shown for v in (p.reported, p.true)] + [m.price for m in shown_marks]
    desc = (f"Step lines of the reported and the true price from block {lo_b:,} to {hi_b - 1:,}, "
            f"with {len(shown_marks)} liquidations marked.")
    svg = _Svg(width, height, chart_id, title, desc)
    left, right, top, bottom = 74, 16, 16, 44
    top = svg.legend(_price_legend(shown_marks, window), left, top + 6, width - right) + 6
    plot_w, plot_h = width - left - right, height - top - bottom
    if not values:
        svg.text(width / 2, top + plot_h / 2, "no price data in this range", anchor="middle", fill=MUTED)
        return svg.render()
    vmin, vmax = min(values), max(values)
    pad = (vmax - vmin) * 0.08 or abs(vmax) * 0.01 or 1
    vmin, vmax = vmin - pad, vmax + pad
    x = lambda b: left + (b - lo_b) / (hi_b - lo_b) * plot_w  # noqa: E731
    y = lambda v: top + (vmax - v) / (vmax - vmin) * plot_h  # noqa: E731
    if window:
        w0, w1 = max(window[0], lo_b), min(window[1] + 1, hi_b)
        if w1 > w0:
            svg.rect(x(w0), top, x(w1) - x(w0), plot_h, WINDOW, opacity=0.45,
                     tooltip=f"mispriced: blocks {window[0]:,}–{window[1]:,}")
    yt = nice_ticks(vmin, vmax, 5)
    for t in yt:
        svg.line(left, y(t), left + plot_w, y(t), GRID)
        svg.text(left - 8, y(t), _tick_text(t, yt, currency), size=11, anchor="end", fill=MUTED, baseline="central")
    xt = [t for t in nice_ticks(lo_b, hi_b - 1, max(2, min(6, plot_w // 120))) if float(t).is_integer()]
    for t in xt:
        svg.line(x(t), top + plot_h, x(t), top + plot_h + 4, MUTED)
        svg.text(x(t), top + plot_h + 17, f"{int(t):,}", size=11, anchor="middle", fill=MUTED)
    svg.text(left + plot_w / 2, height - 6, "block", size=11, anchor="middle", fill=MUTED)
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, INK)
    svg.add(f'<path d="{_step_path([(p.block, p.true) for p in shown], x, y, hi_b)}" fill="none" '
            f'stroke="{TRUE}" stroke-width="2.5"/>')
    svg.add(f'<path d="{_step_path([(p.block, p.reported) for p in shown], x, y, hi_b)}" fill="none" '
            f'stroke="{REPORTED}" stroke-width="2.5" stroke-dasharray="6 4"/>')
    per_block: dict[int, list[Mark]] = {}
    for m in shown_marks:
        per_block.setdefault(m.block, []).append(m)
    block_w = plot_w / max(1, hi_b - lo_b)
    for block, ms in sorted(per_block.items()):
        # Shrink the marks of a crowded block so they sit side by side instead of on top of each other.
        r = max(2.0, min(5.5, block_w / 3, block_w / (len(ms) * 2.3)))
        for i, m in enumerate(ms):
            bx = x(block + (i + 0.5) / len(ms))
            svg.marker(_VERDICT_SHAPES.get(m.verdict, "circle"), bx, y(m.price), r,
                       VERDICT_COLOURS.get(m.verdict, MUTED), m.tooltip)
    return svg.render()


def _price_legend(marks: list[Mark], window) -> list[tuple[str, str, str]]:
    items = [("line", TRUE, "true price"), ("dash", REPORTED, "reported price")]
    if window:
        items.append(("band", WINDOW, "mispriced"))
    for verdict in ("wrongly_eligible", "eligible_anyway", "anomaly"):
        if any(m.verdict == verdict for m in marks):
            items.append((_VERDICT_SHAPES[verdict], VERDICT_COLOURS[verdict], f"liquidation: {VERDICT_LABELS[verdict]}"))
    return items


# --- health factor before each liquidation ------------------------------------------------------


@dataclass(frozen=True)
class HFItem:
    label: str  # short x label (the liquidation's number)
    reported: float
    true: float
    verdict: str
    tooltip: str


def hf_chart(items: list[HFItem], *, chart_id: str, title: str, width: int = 760, height: int = 340) -> str:
    """Health factor before each liquidation at the reported price (circle) and the true price (diamond)."""
    desc = (f"For each of {len(items)} liquidations, in chain order, the health factor just before it at the "
            "reported price and at the true price; the dashed line is HF = 1, below which a position can be liquidated.")
    svg = _Svg(width, height, chart_id, title, desc)
    left, right, top, bottom = 56, 16, 16, 46
    legend = [("circle", REPORTED, "HF at the reported price"), ("diamond", TRUE, "HF at the true price"),
              ("band", LIQUIDATABLE, "liquidatable (HF < 1)")]
    top = svg.legend(legend, left, top + 6, width - right) + 6
    plot_w, plot_h = width - left - right, height - top - bottom
    if not items:
        svg.text(width / 2, top + plot_h / 2, "no liquidations", anchor="middle", fill=MUTED)
        return svg.render()
    items = [HFItem(it.label, it.reported if not math.isnan(it.reported) else math.inf,
                    it.true if not math.isnan(it.true) else math.inf, it.verdict, it.tooltip) for it in items]
    finite = [v for it in items for v in (it.reported, it.true) if math.isfinite(v)]
    vmin, vmax = min(finite + [1.0]), max(finite + [1.0])
    vmin, vmax = max(0.0, vmin), min(vmax, 3.0)  # an HF of 1e59 (no debt) would flatten everything else
    pad = (vmax - vmin) * 0.1 or 0.01
    vmin, vmax = max(0.0, vmin - pad), vmax + pad
    y = lambda v: top + (vmax - min(max(v, vmin), vmax)) / (vmax - vmin) * plot_h  # noqa: E731
    band = plot_w / len(items)
    x = lambda i: left + band * (i + 0.5)  # noqa: E731
    svg.rect(left, y(1.0), plot_w, top + plot_h - y(1.0), LIQUIDATABLE, opacity=0.7)
    yt = nice_ticks(vmin, vmax, 5)
    for t in yt:
        svg.line(left, y(t), left + plot_w, y(t), GRID)
        svg.text(left - 8, y(t), _tick_text(t, yt), size=11, anchor="end", fill=MUTED, baseline="central")
    svg.line(left, y(1.0), left + plot_w, y(1.0), INK, 1.5, "6 4")
    svg.text(left + plot_w - 4, y(1.0) - 6, "HF = 1", size=11, anchor="end", fill=INK, weight="600")
    r = max(2.5, min(6.0, band / 3.2))
    every = max(1, math.ceil(len(items) / max(1, plot_w // 28)))
    for i, it in enumerate(items):
        cx = x(i)
        clipped = lambda v: not (vmin <= v <= vmax)  # noqa: E731
        if math.isfinite(it.reported) and math.isfinite(it.true):
            svg.line(cx, y(it.reported), cx, y(it.true), MUTED, 1.2)
        svg.marker("circle", cx, y(it.reported), r, REPORTED, it.tooltip, hollow=clipped(it.reported))
        svg.marker("diamond", cx, y(it.true), r, TRUE, it.tooltip, hollow=clipped(it.true))
        svg.rect(cx - min(band * 0.35, 6), top + plot_h + 3, 2 * min(band * 0.35, 6), 4,
                 VERDICT_COLOURS.get(it.verdict, MUTED), tooltip=VERDICT_LABELS.get(it.verdict, it.verdict))
        if i % every == 0:
            svg.text(cx, top + plot_h + 20, it.label, size=10.5, anchor="middle", fill=MUTED)
    svg.line(left, top + plot_h, left + plot_w, top + plot_h, INK)
    svg.text(left + plot_w / 2, height - 6, "liquidation, in chain order (coloured tick: verdict)", size=11,
             anchor="middle", fill=MUTED)
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


def loss_bars(chart: LossChart, *, chart_id: str, title: str, unit: str = "ETH", width: int = 760,
              max_bars: int = 30) -> str:
    """Stacked horizontal bars, largest first; beyond ``max_bars`` the rest are summed into one bar."""
    bars = list(chart.bars)
    if len(bars) > max_bars:
        rest = bars[max_bars - 1:]
        summed = tuple(sum(b.parts[i] for b in rest) for i in range(len(chart.part_names)))
        bars = bars[:max_bars - 1] + [LossBar(f"{len(rest)} others", summed, f"{sum(summed):,.2f} {unit}",
                                              f"{len(rest)} more borrowers")]
    row_h, left, right = 24, 118, 112
    legend_items = [("band", PART_COLOURS[i % len(PART_COLOURS)], name) for i, name in enumerate(chart.part_names)]
    probe = _Svg(width, 10, chart_id, title, "")
    top = probe.legend(legend_items, left, 22, width - right) + 8
    height = int(top + max(1, len(bars)) * row_h + 40)
    desc = f"One bar per borrower ({len(chart.bars)} in all), largest first, split into {', '.join(chart.part_names)}."
    svg = _Svg(width, height, chart_id, title, desc)
    svg.legend(legend_items, left, 22, width - right)
    plot_w = width - left - right
    if not bars:
        svg.text(width / 2, top + 20, "no losses", anchor="middle", fill=MUTED)
        return svg.render()
    vmax = max(sum(b.parts) for b in bars) or 1.0
    ticks = nice_ticks(0, vmax, max(2, min(5, plot_w // 110)))
    vmax = max(vmax, ticks[-1] if ticks else vmax)
    x = lambda v: left + v / vmax * plot_w  # noqa: E731
    bottom = top + len(bars) * row_h
    for t in ticks:
        svg.line(x(t), top - 4, x(t), bottom, GRID)
        svg.text(x(t), bottom + 16, _tick_text(t, ticks), size=11, anchor="middle", fill=MUTED)
    svg.text(left + plot_w / 2, bottom + 32, unit, size=11, anchor="middle", fill=MUTED)
    for i, b in enumerate(bars):
        y0 = top + i * row_h
        svg.text(left - 8, y0 + row_h / 2, b.label, size=11.5, anchor="end", baseline="central")
        acc = 0.0
        for j, v in enumerate(b.parts):
            if v > 0:
                svg.rect(x(acc), y0 + 4, x(acc + v) - x(acc), row_h - 8, PART_COLOURS[j % len(PART_COLOURS)],
                         tooltip=f"{b.tooltip}: {chart.part_names[j]} {v:,.4f} {unit}")
            acc += v
        svg.text(x(acc) + 6, y0 + row_h / 2, b.value_label, size=11, fill=INK, baseline="central")
    svg.line(left, top - 4, left, bottom, INK)
    return svg.render()
