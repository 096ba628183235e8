"""The parts a report model is made of: a figure with the SQL that reproduces it, a table of rows
with its SQL, a check the report ran; the verdict names; and the one rounding the model does (ppm).

Amounts stay Python ints in their raw unit (token base units, wei, base currency units of 1e8
per USD, wads) until a renderer displays them.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

VERDICT_WRONG = "wrongly_eligible"
VERDICT_ANYWAY = "eligible_anyway"
VERDICT_ANOMALY = "anomaly"
VERDICTS = (VERDICT_WRONG, VERDICT_ANYWAY, VERDICT_ANOMALY)

GROUP_HEADLINE = "headline"
GROUP_FIGURES = "figures"

@dataclass(frozen=True)
class Figure:
    """One figure of the report with the SQL that reproduces it.

    ``shape`` says how ``rows`` (the SQL result, exact) becomes ``value``: ``scalar`` (first
    column of the only row), ``row`` (the only row as a dict) or ``rows`` (every row).
    ``unit`` names the raw unit of the main amount: count, wei, base, token, block.
    """

    key: str
    label: str
    group: str
    shape: str
    unit: str
    sql: str
    rows: list[dict]
    note: str = ""

    @property
    def value(self) -> Any:
        if self.shape == "rows":
            return self.rows
        if not self.rows:
            return None
        if self.shape == "row":
            return self.rows[0]
        return next(iter(self.rows[0].values()))


@dataclass(frozen=True)
class Table:
    """Rows for a table of the report, with their SQL. ``rows`` use logical column names."""

    key: str
    title: str
    sql: str
    rows: list[dict]
    note: str = ""


@dataclass(frozen=True)
class Check:
    """A consistency check the report ran; ``ok`` is None when it could not run."""

    key: str
    title: str
    ok: bool | None
    detail: str
    sql: str = ""


def ppm(reported: int, true: int) -> int:
    """``(reported - true) / true`` in parts per million, rounded half away from zero."""
    q = Fraction((int(reported) - int(true)) * 1_000_000, int(true))
    sign = -1 if q < 0 else 1
    q = abs(q)
    return sign * int((2 * q.numerator + q.denominator) // (2 * q.denominator))

