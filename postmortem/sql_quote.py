"""Quote names and values for DuckDB SQL text: the one escaper every module that builds SQL uses.

Used where a value cannot be a bound parameter (``CREATE VIEW``, ``COMMENT ON``, settings, file
globs). Doubling the quote character is the SQL standard's escape and DuckDB's; no other
character is special inside quotes.
"""

from __future__ import annotations

from typing import Any


def quote_ident(name: str) -> str:
    """``name`` as a double-quoted SQL identifier, its double quotes doubled."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: Any) -> str:
    """``value`` (as text) as a single-quoted SQL string literal, its quotes doubled (it's -> 'it''s')."""
    return "'" + str(value).replace("'", "''") + "'"
