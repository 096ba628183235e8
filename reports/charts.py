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
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timezone

from postmortem.reports.escape import escape_html as _e
from postmortem.reports.fmt import duration

WIDE, NARROW = 760, 380  # viewBox widths: desktop, and phones (drawn at about 1:1 on a 390 px screen)

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
    # Generous: DejaVu Sans (Debian's default) is wide, and a label that is drawn wider than we
    # planned would run into a mark or off the chart.
    return len(text) * size * 0.64


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

    def rect(self, x: float, y: float, w: float, h: float, fill: str, tooltip: str | None = None,
             opacity: float | None = None, mark: bool = False) -> None:
        o = f' fill-opacity="{_n(opacity)}"' if opacity is not None else ""
        c = ' class="mark"' if mark else ""
        body = f"<title>{_e(tooltip)}</title>" if tooltip else ""
        head = f'<rect{c} x="{_n(x)}" y="{_n(y)}" width="{_n(max(w, 0))}" height="{_n(max(h, 0))}" fill="{fill}"{o}'
        self.add(f"{head}>{body}</rect>" if body else f"{head}/>")

    def marker(self, shape: str, x: float, y: float, r: float, fill: str, tooltip: str | None = None,
               hollow: bool = False) -> None:
        """A data mark (``class="mark"``) when it has a tooltip; a legend swatch when not."""
        style = (f'fill="#ffffff" stroke="{fill}" stroke-width="2"' if hollow
                 else f'fill="{fill}" stroke="#ffffff" stroke-width="{_n(min(1.2, r * 0.25))}"')  # small marks stay coloured
        body = f"<title>{_e(tooltip)}</title>" if tooltip else ""
        c = ' class="mark"' if tooltip else ""
        if shape == "square":
            el = f'<rect{c} x="{_n(x - r)}" y="{_n(y - r)}" width="{_n(2 * r)}" height="{_n(2 * r)}" {style}>{body}</rect>'
        elif shape == "diamond":
            pts = f"{_n(x)},{_n(y - r * 1.25)} {_n(x + r * 1.25)},{_n(y)} {_n(x)},{_n(y + r * 1.25)} {_n(x - r * 1.25)},{_n(y)}"
            el = f'<polygon{c} points="{pts}" {style}>{body}</polygon>'
        elif shape == "triangle":
            pts = f"{_n(x)},{_n(y - r * 1.3)} {_n(x + r * 1.2)},{_n(y + r)} {_n(x - r * 1.2)},{_n(y + r)}"
            el = f'<polygon{c} points="{pts}" {style}>{body}</polygon>'
        else:
            el = f'<circle{c} cx="{_n(x)}" cy="{_n(y)}" r="{_n(r)}" {style}>{body}</circle>'
        self.add(el)

    def bracket(self, x: float, y1: float, y2: float, colour: str = INK) -> None:
        """A right-facing bracket ``]`` from y1 to y2: the span a label in the margin is about."""
        self.add(f'<path d="M{_n(x)},{_n(y1)}h4V{_n(y2)}h-4" fill="none" stroke="{colour}" stroke-width="1.3"/>')

    def axis_break_y(self, x: float, y: float) -> None:
        """The two slashes on a value axis that does not start at zero."""
        self.rect(x - 6, y - 6, 12, 8, "#ffffff")
        for dy in (-5, -1):
            self.line(x - 6, y + dy + 3, x + 6, y + dy - 1, INK, 1.2)

    def axis_break_x(self, x: float, y: float) -> None:
        """The two slashes on a time axis where a quiet stretch is cut out."""
        self.rect(x - 5, y - 5, 10, 10, "#ffffff")
        for dx in (-3, 3):
            self.line(x + dx - 3, y + 6, x + dx + 3, y - 6, INK, 1.2)

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
            elif kind == "tick":
                self.rect(x + 2, y - 2, 12, 4, colour)
            elif kind == "bracket":
                self.bracket(x + 5, y - 7, y + 7, colour)
            elif kind.startswith("hollow-"):
                self.marker(kind[len("hollow-"):], x + 8, y, 4.5, colour, hollow=True)
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


def _round_range(lo: float, hi: float, n: int = 5) -> tuple[float, float, list[float]]:
    """[lo, hi] widened to whole ticks, so an axis starts and ends on a round level."""
    ticks = nice_ticks(lo, hi, n)
    if len(ticks) < 2:
        return lo, hi, ticks
    step = ticks[1] - ticks[0]
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = nice_ticks(start, end, n)
    return round(start, 12), round(end, 12), ticks


class _Labels:
    """Text boxes already placed on one row, so a new label that would overlap one is skipped."""

    def __init__(self) -> None:
        self.boxes: list[tuple[float, float]] = []

    def fits(self, centre: float, text: str, size: float, gap: float = 8) -> bool:
        half = _text_width(text, size) / 2 + gap / 2
        return all(centre + half <= a or centre - half >= b for a, b in self.boxes)

    def take(self, centre: float, text: str, size: float, gap: float = 8) -> None:
        half = _text_width(text, size) / 2 + gap / 2
        self.boxes.append((centre - half, centre + half))


# --- price over the window --------------------------------------------------------------------------


@dataclass(frozen=True)
class PricePoint:
    block: int
    reported: float
    true: float
    time: int | None = None  # the block's timestamp, unix seconds


@dataclass(frozen=True)
class Mark:
    block: int
    price: float
    verdict: str
    tooltip: str
    time: int | None = None  # the block's timestamp, unix seconds


_VERDICT_SHAPES = {"wrongly_eligible": "circle", "eligible_anyway": "square", "anomaly": "triangle"}
BREAK_PX = 22  # the width a cut-out quiet stretch of the time axis takes
BREAK_MIN_S = 300  # a gap shorter than this is never cut


class _XScale:
    """Block or time positions to pixels, piecewise linear: long quiet gaps are cut to ``BREAK_PX``.

    A gap between two consecutive events (a price point or a liquidation) is cut when it lasts more
    than ``BREAK_MIN_S`` seconds and more than a fifth of what is left of the span once the longer
    gaps are cut, so a one-hour pause does not squeeze the minutes with every liquidation into a
    sliver. Only time axes are cut.
    """

    def __init__(self, events: list[float], lo: float, hi: float, px0: float, px1: float, cut: bool):
        span = hi - lo
        inner = sorted({e for e in events if lo <= e <= hi} | {lo, hi})
        self.gaps = []
        for a, b in sorted(zip(inner, inner[1:]), key=lambda g: g[0] - g[1]) if cut and span > 0 else []:
            if b - a <= BREAK_MIN_S or b - a <= 0.2 * span:
                break
            self.gaps.append((a, b))
            span -= b - a
        self.gaps.sort()
        self.segments, start = [], lo
        for a, b in self.gaps:
            self.segments.append((start, a))
            start = b
        self.segments.append((start, hi))
        self.total = sum(b - a for a, b in self.segments) or 1
        self.px0, self.avail = px0, (px1 - px0) - BREAK_PX * len(self.gaps)

    def __call__(self, v: float) -> float:
        done = 0.0
        for k, (a, b) in enumerate(self.segments):
            if v <= b or k == len(self.segments) - 1:
                inside = min(max(v, a), b) - a
                return self.px0 + k * BREAK_PX + (done + inside) / self.total * self.avail
            done += b - a
            ga, gb = self.gaps[k]
            if v < gb:  # inside a cut gap: spread over the break's width
                return self.px0 + k * BREAK_PX + done / self.total * self.avail + (v - ga) / (gb - ga) * BREAK_PX
        return self.px0  # pragma: no cover  (the loop always returns)

    def break_centres(self) -> list[tuple[float, float]]:
        """(pixel centre, seconds cut) of every break."""
        return [(self(a) + BREAK_PX / 2, b - a) for a, b in self.gaps]


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)


def _utc(t: float, seconds: bool) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S" if seconds else "%H:%M")


def _time_ticks(scale: _XScale, plot_w: float) -> tuple[list[float], bool]:
    """Round UTC times inside the drawn segments, about one per 100 px; and whether they need seconds."""
    per_s = scale.avail / scale.total
    step = next((s for s in _TIME_STEPS if s * per_s >= 100), _TIME_STEPS[-1])
    ticks = []
    for a, b in scale.segments:
        t = math.ceil(a / step) * step
        while t <= b:
            ticks.append(float(t))
            t += step
    return ticks, step < 60


def _step_path(points: list[tuple[float, float]], x, y, x_end: float) -> str:
    """A step line: each value holds from its position to the next change (only changes are emitted)."""
    if not points:
        return ""
    d = [f"M{_n(x(points[0][0]))},{_n(y(points[0][1]))}"]
    last = points[0][1]
    for pos, value in points[1:]:
        if value != last:
            d.append(f"H{_n(x(pos))}V{_n(y(value))}")
            last = value
    d.append(f"H{_n(x(x_end))}")
    return "".join(d)


def _fmt_money(v: float, ticks: list[float], currency: str) -> str:
    return _tick_text(v, ticks, currency) if v >= 0 else "-" + _tick_text(-v, ticks, currency)


def price_chart(points: list[PricePoint], marks: list[Mark], *, chart_id: str, title: str,
                window: tuple[int, int] | None = None, x_range: tuple[int, int] | None = None,
                width: int = WIDE, height: int | None = None, currency: str = "$",
                unit: str = "USD") -> str:
    """Reported vs true price with each liquidation marked, over UTC time when every point has one.

    ``window`` (first, last mispriced block) is shaded; ``x_range`` (first, last block) zooms.
    Liquidations in the same block are spread across that block's time so none hides another.
    ``unit`` names the price for the y-axis title (e.g. ``USD per wstETH``).
    """
    height = height or (340 if width >= 600 else 400)
    points = sorted(points, key=lambda p: p.block)
    lo_b = x_range[0] if x_range else min([p.block for p in points] + [m.block for m in marks], default=0)
    hi_b = (x_range[1] if x_range else max([p.block for p in points] + [m.block for m in marks], default=0)) + 1
    # The value in force at the left edge comes from the last point at or before it.
    before = [p for p in points if p.block <= lo_b]
    shown = ([PricePoint(lo_b, before[-1].reported, before[-1].true, before[-1].time)] if before else []) + \
            [p for p in points if lo_b < p.block < hi_b]
    shown_marks = [m for m in marks if lo_b <= m.block < hi_b]
    values = [v for p in shown for v in (p.reported, p.true)] + [m.price for m in shown_marks]

    # Positions: block timestamps when every block we draw has one, else block numbers.
    times = {p.block: p.time for p in points if p.time is not None}
    times.update({m.block: m.time for m in marks if m.time is not None})
    timed = bool(shown) and all(p.block in times for p in shown) and all(m.block in times for m in shown_marks)
    blocks = sorted({p.block for p in shown} | {m.block for m in shown_marks})
    if timed:
        known = sorted(times.items())
        diffs = [b[1] - a[1] for a, b in zip(known, known[1:]) if b[0] == a[0] + 1 and b[1] > a[1]]
        block_s = statistics.median(diffs) if diffs else 12
        after = [t for b, t in known if b >= hi_b]
        pos = lambda b: times[b]  # noqa: E731
        hi_pos = after[0] if after and x_range else (max(times[b] for b in blocks) + block_s if blocks else 0)
        lo_pos = pos(shown[0].block) if shown else 0
        # Marks spread over their block's time: until the next block, at most one typical block.
        nexts = dict(zip(blocks, blocks[1:]))
        dur = lambda b: min(block_s, (times[nexts[b]] - times[b]) if b in nexts else block_s) or block_s  # noqa: E731
    else:
        pos = lambda b: b  # noqa: E731
        lo_pos, hi_pos = lo_b, hi_b
        dur = lambda b: 1  # noqa: E731

    span_words = (f"from {_utc(lo_pos, True)} to {_utc(hi_pos, True)} UTC" if timed
                  else f"from block {lo_b:,} to {hi_b - 1:,}")
    desc = (f"Step lines of the reported and the true price {span_words}, "
            f"with {len(shown_marks)} liquidations marked.")
    svg = _Svg(width, height, chart_id, title, desc)
    left, right, top, bottom = 66, 72, 16, 48
    if not values:
        svg.text(width / 2, height / 2, "no price data in this range", anchor="middle", fill=MUTED)
        return svg.render()
    vmin, vmax = min(values), max(values)
    pad = (vmax - vmin) * 0.08 or abs(vmax) * 0.01 or 1
    vmin, vmax, yt = _round_range(vmin - pad, vmax + pad, 5)
    starts_above_zero = vmin > 0
    gap = max(((p.reported / p.true - 1, p) for p in shown if p.true), key=lambda g: abs(g[0]), default=(0.0, None))
    legend = _price_legend(shown_marks, window, abs(gap[0]) >= 0.0005)
    top = svg.legend(legend, left, top + 6, width - 8) + 8
    y_title = f"price, {unit}" + (f" (axis from {_fmt_money(vmin, yt, currency)}, not 0)" if starts_above_zero else "")
    svg.text(8, top + 6, y_title, size=11.5, fill=INK, weight="600", baseline="central")
    top += 22
    plot_w, plot_h = width - left - right, height - top - bottom
    events = [pos(p.block) for p in shown] + [pos(m.block) for m in shown_marks]
    x = _XScale(events, lo_pos, hi_pos, left, left + plot_w, cut=timed)
    y = lambda v: top + (vmax - v) / (vmax - vmin) * plot_h  # noqa: E731
    if window:
        w0, w1 = max(window[0], lo_b), min(window[1] + 1, hi_b)
        if w1 > w0:
            x0 = x(pos(w0)) if w0 in times or not timed else x(lo_pos)
            x1 = x(hi_pos) if w1 >= hi_b or (timed and w1 not in times) else x(pos(w1))
            svg.rect(x0, top, x1 - x0, plot_h, WINDOW, opacity=0.45,
                     tooltip=f"mispriced: blocks {window[0]:,}–{window[1]:,}")
    for t in yt:
        svg.line(left, y(t), left + plot_w, y(t), GRID)
        svg.text(left - 8, y(t), _fmt_money(t, yt, currency), size=11, anchor="end", fill=MUTED, baseline="central")
    svg.line(left, top, left, top + plot_h, INK)
    if starts_above_zero:
        svg.axis_break_y(left, top + plot_h - 8)
    # The x axis: breaks first (their labels win the row), then the round ticks that still fit.
    row, axis_y = _Labels(), top + plot_h
    for cx, cut_s in x.break_centres():
        svg.rect(cx - BREAK_PX / 2 + 3, top, BREAK_PX - 6, plot_h, "#ffffff", opacity=0.8,
                 tooltip=f"{duration(int(cut_s))} without events, cut out of the time axis")
        svg.axis_break_x(cx, axis_y)
        label = f"{duration(int(cut_s))} cut"
        svg.text(cx, axis_y + 18, label, size=11, anchor="middle", fill=INK)
        row.take(cx, label, 11)
    if timed:
        ticks, with_seconds = _time_ticks(x, plot_w)
        tick_labels = [(x(t), _utc(t, with_seconds)) for t in ticks]
        d0, d1 = (datetime.fromtimestamp(v, timezone.utc).date() for v in (lo_pos, hi_pos))
        x_title = f"time, UTC ({d0}{'' if d0 == d1 else f' to {d1}'})"
    else:
        tick_labels = [(x(t), f"{int(t):,}") for t in nice_ticks(lo_b, hi_b - 1, max(2, min(6, int(plot_w // 120))))
                       if float(t).is_integer()]
        x_title = "block number"
    for px, label in tick_labels:
        if left - 4 <= px <= left + plot_w + 4 and row.fits(px, label, 11):
            row.take(px, label, 11)
            svg.line(px, axis_y, px, axis_y + 4, MUTED)
            svg.text(px, axis_y + 18, label, size=11, anchor="middle", fill=MUTED)
    if x.gaps:
        x_title += "; // marks time cut out"
    svg.text(left + plot_w / 2, height - 8, x_title, size=11, anchor="middle", fill=MUTED)
    svg.line(left, axis_y, left + plot_w, axis_y, INK)
    svg.add(f'<path class="series-true" d="{_step_path([(pos(p.block), p.true) for p in shown], x, y, hi_pos)}" '
            f'fill="none" stroke="{TRUE}" stroke-width="2.5"/>')
    svg.add(f'<path class="series-reported" d="{_step_path([(pos(p.block), p.reported) for p in shown], x, y, hi_pos)}" '
            f'fill="none" stroke="{REPORTED}" stroke-width="2.5" stroke-dasharray="6 4"/>')
    if abs(gap[0]) >= 0.0005:
        # The largest gap, in the right margin: its size in %, beside a bracket spanning it.
        p = gap[1]
        y1, y2 = sorted((y(p.true), y(p.reported)))
        bx = left + plot_w + 8
        svg.bracket(bx, y1, y2)
        svg.text(bx + 8, (y1 + y2) / 2, f"{gap[0] * 100:+.2f}%".replace("-", "−"), size=11.5, weight="600",
                 baseline="central")
    per_block: dict[int, list[Mark]] = {}
    for m in shown_marks:
        per_block.setdefault(m.block, []).append(m)
    for block, ms in sorted(per_block.items()):
        b0, b1 = x(pos(block)), x(pos(block) + dur(block))
        # Shrink the marks of a crowded block so they sit side by side instead of on top of each other.
        r = max(2.0, min(5.5, (b1 - b0) / 3, (b1 - b0) / (len(ms) * 2.3)))
        for i, m in enumerate(ms):
            svg.marker(_VERDICT_SHAPES.get(m.verdict, "circle"), b0 + (b1 - b0) * (i + 0.5) / len(ms), y(m.price), r,
                       VERDICT_COLOURS.get(m.verdict, MUTED), m.tooltip)
    return svg.render()


def _price_legend(marks: list[Mark], window, gap: bool) -> list[tuple[str, str, str]]:
    items = [("line", TRUE, "true price"), ("dash", REPORTED, "reported price")]
    if window:
        items.append(("band", WINDOW, "mispriced"))
    for verdict in ("wrongly_eligible", "eligible_anyway", "anomaly"):
        if any(m.verdict == verdict for m in marks):
            items.append((_VERDICT_SHAPES[verdict], VERDICT_COLOURS[verdict], f"liquidation: {VERDICT_LABELS[verdict]}"))
    if gap:
        items.append(("bracket", INK, "largest gap, reported vs true"))
    return items


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
