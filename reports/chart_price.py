"""The price chart: reported and true price of the mispriced asset as step lines over time (or
blocks), the mispriced stretch shaded, every liquidation marked by verdict, long quiet gaps of
the time axis cut out and marked (``_XScale``).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import datetime, timezone

from postmortem.reports.fmt import duration
from postmortem.reports.svg import (
    GRID,
    INK,
    MUTED,
    REPORTED,
    TRUE,
    VERDICT_COLOURS,
    VERDICT_LABELS,
    WIDE,
    WINDOW,
    _Labels,
    _n,
    _round_range,
    _Svg,
    _tick_text,
    nice_ticks,
)

__all__ = ["BREAK_MIN_S", "BREAK_PX", "Mark", "PricePoint", "price_chart"]

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
