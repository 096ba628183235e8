"""The drawing kit under the report's charts: palette, fixed viewBox widths, round tick levels,
text widths measured without a font engine, and ``_Svg``, which writes the elements with every
attribute escaped. The charts themselves (``reports.charts``, ``reports.chart_price``) are pure
functions on top of it.
"""

from __future__ import annotations

import math

from postmortem.reports.escape import escape_html as _e

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
