"""A what-if sweep's curve: ``curve.csv``, ``curve.json`` and ``curve.svg`` (drawn with
:mod:`reports.svg`): liquidations that would have happened, wrongly eligible ones and
liquidatable borrowers, and the oracle loss and bad debt in ETH, against the swept value.

The files hold the exact integers of ``whatif_runs``; the chart converts them to floats only to
draw them.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

from postmortem import atomic
from postmortem.reports.svg import GRID, INK, MUTED, REPORTED, TRUE, WIDE, _round_range, _Svg, _text_width

__all__ = ["CURVE_COLUMNS", "curve_svg", "write_curve"]

CURVE_COLUMNS = ("point", "sweep_value", "sweep_value_int", "is_boundary", "would_liquidate", "prevented",
                 "wrongly_eligible", "liquidatable_positions", "liquidatable_not_liquidated", "oracle_loss_eth_wei",
                 "bonus_loss_eth_wei", "borrower_loss_eth_wei", "bad_debt_eth_wei", "collateral_seized_base")

_COUNTS = (("would_liquidate", "liquidations that happen", REPORTED, "line"),
           ("wrongly_eligible", "wrongly eligible", "#b91c1c", "dash"),
           ("liquidatable_positions", "liquidatable borrowers", TRUE, "line"))
_ETH = (("oracle_loss_eth_wei", "oracle loss", REPORTED, "line"), ("bad_debt_eth_wei", "bad debt", "#059669", "dash"))


def _eth(wei) -> float:
    return 0.0 if wei is None else float(Decimal(int(wei)) / Decimal(10**18))


def curve_svg(points: list[dict], key: str, boundary: dict | None, width: int = WIDE) -> str:
    """Two panels over the swept value: counts on top, ETH amounts below; the boundary as a line."""
    xs = [float(Decimal(str(p["sweep_value_int"]))) for p in points]
    scale = 1e18 if key.endswith("snapshot_ratio") else 100.0 if _is_bps(key) else 1.0
    xs = [x / scale for x in xs]
    left, right, top = 64, 16, 34
    panel_h, gap = 150, 64
    height = top + 2 * panel_h + gap + 92
    svg = _Svg(width, height, f"whatif-curve-{width}", f"What-if sweep of {key}",
               f"Liquidations, wrongly eligible ones and liquidatable borrowers (top), oracle loss and bad debt in ETH "
               f"(bottom) against {key}, over {len(points)} points.")
    x0, x1 = left, width - right
    lo, hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    if hi == lo:
        hi = lo + 1
    X = lambda v: x0 + (v - lo) / (hi - lo) * (x1 - x0)  # noqa: E731
    svg.text(x0, 18, f"What changes as {key} moves", size=14, weight="600")
    for panel, (series, unit) in enumerate(((_COUNTS, "count"), (_ETH, "ETH"))):
        ytop = top + panel * (panel_h + gap)
        ybot = ytop + panel_h
        values = [[(_eth(p.get(k)) if unit == "ETH" else float(p.get(k) or 0)) for p in points] for k, *_ in series]
        vmin = min(0.0, *(min(v) for v in values if v)) if points else 0.0
        vmax = max(1.0, *(max(v) for v in values if v)) if points else 1.0
        a, b, ticks = _round_range(vmin, vmax, 4)
        Y = lambda v, a=a, b=b, ytop=ytop, ybot=ybot: ybot - (v - a) / ((b - a) or 1) * (ybot - ytop)  # noqa: E731
        for t in ticks:
            svg.line(x0, Y(t), x1, Y(t), GRID)
            svg.text(x0 - 6, Y(t), f"{t:,.6g}", size=11, anchor="end", fill=MUTED, baseline="central")
        svg.text(8, ytop - 10, "borrowers / liquidations" if unit == "count" else "ETH", size=11, fill=MUTED)
        for (k, label, colour, kind), vals in zip(series, values):
            if not vals:
                continue
            pts = " ".join(f"{X(x):.2f},{Y(v):.2f}" for x, v in zip(xs, vals))
            dash = ' stroke-dasharray="5 3"' if kind == "dash" else ""
            svg.add(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        svg.line(x0, ybot, x1, ybot, INK)
        for t in _round_range(lo, hi, 5 if width == WIDE else 3)[2]:
            if lo - 1e-12 <= t <= hi + 1e-12:
                svg.line(X(t), ybot, X(t), ybot + 4, INK)
                svg.text(X(t), ybot + 16, f"{t:,.6g}", size=11, anchor="middle", fill=MUTED)
        if boundary and boundary.get("x") is not None:
            bx = X(boundary["x"] / scale)
            svg.line(bx, ytop, bx, ybot, INK, 1.2, "3 3")
    axis = f"{key}" + (" (%)" if _is_bps(key) else "")
    svg.text((x0 + x1) / 2, top + 2 * panel_h + gap + 34, axis, size=12, anchor="middle")
    items = [(kind, colour, label) for _k, label, colour, kind in (*_COUNTS, *_ETH)]
    if boundary and boundary.get("x") is not None:
        label = f"boundary {boundary.get('text', '')}"
        if _text_width(label, 12) > width - 80:
            label = "boundary"
        items.append(("dash", INK, label))
    svg.legend(items, x0, top + 2 * panel_h + gap + 56, x1)
    return svg.render()


def _is_bps(key: str) -> bool:
    return key.split(".")[-1] in ("price_shift", "max_yearly_growth", "liquidation_threshold", "liquidation_bonus",
                                  "protocol_fee", "close_factor")


def write_curve(runs: list[dict], key: str, boundary: dict | None, out_dir: Path | str) -> dict[str, Path]:
    """Write the sweep points of ``runs`` (``whatif_runs`` rows) as curve.csv / .json / .svg in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = [r for r in runs if r.get("kind") == "sweep"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CURVE_COLUMNS)
    for p in points:
        w.writerow(["" if p.get(c) is None else p.get(c) for c in CURVE_COLUMNS])
    bx = None
    if boundary:
        bx = boundary.get("snapshot_ratio", boundary.get("value"))
    b = {"x": bx, "text": boundary.get("snapshot_ratio_text", boundary.get("value_text", "")) if boundary else ""}
    paths = {"csv": out / "curve.csv", "json": out / "curve.json", "svg": out / "curve.svg"}
    atomic.write_text(paths["csv"], buf.getvalue())
    atomic.write_text(paths["json"], json.dumps({"sweep_key": key, "boundary": boundary,
                                                  "points": [{c: p.get(c) for c in CURVE_COLUMNS} for p in points]},
                                                 indent=1, default=str) + "\n")
    atomic.write_text(paths["svg"], curve_svg(points, key, b) + "\n")
    return paths
