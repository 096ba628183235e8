"""Report figures and SQL answers in one comparable form."""

from __future__ import annotations

import json

from postmortem.sql import run_sql


def as_text(value):
    """Both sides in one exact form: run_sql's JSON gives DECIMAL as strings and BIGINT as numbers."""
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return str(value)


def sql_rows(root, sql):
    return json.loads(run_sql(root, sql, "json"))


def shaped(shape, rows):
    if shape == "rows":
        return rows
    if not rows:
        return None
    return rows[0] if shape == "row" else next(iter(rows[0].values()))
