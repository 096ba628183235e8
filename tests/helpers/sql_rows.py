"""Query a warehouse's catalog read-only and get rows back as dicts, decimals as exact ints."""

from __future__ import annotations

from decimal import Decimal

from postmortem.sql import connect_read_only


def sql_rows(root, query: str) -> list[dict]:
    con = connect_read_only(root)
    try:
        cur = con.execute(query)
        names = [d[0] for d in cur.description]
        return [{n: (int(v) if isinstance(v, Decimal) else v) for n, v in zip(names, r)} for r in cur.fetchall()]
    finally:
        con.close()
