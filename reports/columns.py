"""The column map: the one place that knows the physical column names of the tables a report reads.

Logical names (what the report calls a column) map to the accepted physical names in
:data:`COLUMNS` (first present wins); :class:`Columns` resolves them against the catalog and
writes them as SQL. :func:`ident`, :func:`literal` and :func:`sql_text` write SQL text the way
every figure's SQL is stored and shown.

The first name is the one the replay (or ingest) writes. A second name is kept only where the
verdicts' earlier names are still accepted (``borrower``, ``tx_hash``, ``oracle_loss_eth``,
``bonus_loss_wei``, ``debt_price``, the verdicts' own decimals; tested); names no writer ever
used are not listed.
"""

from __future__ import annotations

import re

from postmortem.errors import PostmortemError
from postmortem.sql_quote import quote_ident, quote_literal

COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "verdicts": {
        "transaction_hash": ("transaction_hash", "tx_hash"),
        "block_number": ("block_number",),
        "transaction_index": ("transaction_index",),
        "log_index": ("log_index",),
        "timestamp": ("timestamp",),
        "market": ("market",),
        "pool": ("pool",),
        "user": ("user", "borrower"),
        "liquidator": ("liquidator",),
        "collateral_asset": ("collateral_asset",),
        "debt_asset": ("debt_asset",),
        "collateral_symbol": ("collateral_symbol",),
        "debt_symbol": ("debt_symbol",),
        "collateral_decimals": ("collateral_decimals",),  # else from reserves
        "debt_decimals": ("debt_decimals",),  # else from reserves
        "debt_to_cover": ("debt_to_cover",),
        "liquidated_collateral_amount": ("liquidated_collateral_amount",),
        "protocol_fee_amount": ("protocol_fee_amount",),
        "collateral_seized": ("collateral_seized",),
        "receive_a_token": ("receive_a_token",),
        "hf_reported": ("hf_reported",),
        "hf_true": ("hf_true",),
        "verdict": ("verdict",),
        "replay_matches_log": ("replay_matches_log",),
        "max_liquidatable_debt_reported": ("max_liquidatable_debt_reported",),
        "max_liquidatable_debt_true": ("max_liquidatable_debt_true",),
        "over_liquidated_debt": ("over_liquidated_debt",),
        "collateral_price_reported": ("collateral_price_reported",),
        "collateral_price_true": ("collateral_price_true",),
        "debt_price_reported": ("debt_price_reported", "debt_price"),
        "debt_price_true": ("debt_price_true", "debt_price"),
        "eth_price": ("eth_price_true",),
        "oracle_loss_eth": ("oracle_loss_eth_wei", "oracle_loss_eth"),
        "oracle_loss_usd": ("oracle_loss_base",),
        "bonus_loss_eth": ("bonus_loss_eth_wei", "bonus_loss_wei"),
        "bonus_loss_usd": ("bonus_loss_base",),
        "fee_oracle_loss_eth": ("fee_oracle_loss_eth_wei",),
        "fee_oracle_loss_usd": ("fee_oracle_loss_base",),
        "borrower_loss_eth": ("borrower_loss_eth_wei",),
        "borrower_loss_usd": ("borrower_loss_base",),
    },
    "price_path": {
        "asset": ("asset",),
        "pool": ("pool",),
        "symbol": ("symbol",),
        "block_number": ("block_number",),
        "timestamp": ("timestamp",),
        "reported_price": ("reported_price",),
        "true_price": ("true_price",),
    },
    "liquidator_gains": {
        "liquidator": ("liquidator",),
        "gain_eth": ("gain_eth_wei",),
        "gain_usd": ("gain_base",),
    },
    "borrower_losses": {
        "user": ("user",),
        "reimbursable_eth": ("reimbursable_eth_wei",),
    },
    "at_risk": {
        "user": ("user",),
        "market": ("market",),
        "first_block": ("first_block",),
        "last_block": ("last_block",),
        "seconds_exposed": ("seconds_wrongly_eligible",),
        "min_hf": ("min_hf_reported",),
        "hf_true_at_min": ("hf_true_at_min",),
        "debt_usd": ("max_debt_base_reported",),
        "exposed_loss_eth": ("exposed_loss_eth_wei",),
    },
    "liquidations": {  # ingest: decoded LiquidationCall logs
        "block_number": ("block_number",),
        "transaction_hash": ("transaction_hash",),
        "log_index": ("log_index",),
        "address": ("pool", "address"),  # the catalog calls a Pool event's emitter `pool`
    },
    "reserves": {  # ingest: token decimals
        "asset": ("asset",),
        "decimals": ("decimals",),
    },
    "markets": {  # ingest: the math revision of each pool
        "market": ("market",),
        "pool": ("pool",),
        "revision": ("aave_revision", "pool_revision"),
    },
}

REQUIRED: dict[str, tuple[str, ...]] = {
    "verdicts": ("transaction_hash", "block_number", "transaction_index", "log_index", "market", "pool", "user",
                 "liquidator", "collateral_asset", "debt_asset", "debt_to_cover", "liquidated_collateral_amount",
                 "hf_reported", "hf_true", "verdict", "oracle_loss_eth", "bonus_loss_eth"),
    "price_path": ("asset", "block_number", "reported_price", "true_price"),
    "liquidator_gains": ("liquidator", "gain_eth"),
    "borrower_losses": ("user", "reimbursable_eth"),
    "at_risk": ("user", "market"),
    "liquidations": ("block_number", "transaction_hash", "log_index", "address"),
    "reserves": ("asset", "decimals"),
    "markets": ("revision",),
}

# Table names as prose says them (notes are prose; table names belong in the SQL blocks).
PLAIN = {"price_path": "price path", "liquidator_gains": "liquidator gains", "at_risk": "list of positions at risk",
          "borrower_losses": "per-borrower losses", "verdicts": "verdicts", "markets": "market list",
          "reserves": "reserve list", "liquidations": "decoded liquidations"}

_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")
# Names that read better quoted (SQL keywords or DuckDB functions); quoting is always safe.
_QUOTE_ALWAYS = frozenset({"user", "timestamp", "order", "group", "from", "to", "select", "where", "table",
                           "default", "end", "index", "position"})


def ident(name: str) -> str:
    """A column name as SQL: bare when plain, double-quoted otherwise."""
    if _SIMPLE_IDENT.match(name) and name not in _QUOTE_ALWAYS:
        return name
    return quote_ident(name)


literal = quote_literal  # a value as a SQL string literal


class Columns:
    """Logical -> physical column names of one table, resolved against the catalog."""

    def __init__(self, table: str, actual: list[str]):
        self.table = table
        present = set(actual)
        self.physical: dict[str, str] = {}
        for logical, candidates in COLUMNS.get(table, {}).items():
            found = next((c for c in candidates if c in present), None)
            if found is not None:
                self.physical[logical] = found
        self.missing = [c for c in REQUIRED.get(table, ()) if c not in self.physical]

    def has(self, *logical: str) -> bool:
        return all(x in self.physical for x in logical)

    def __call__(self, logical: str, alias: str | None = None) -> str:
        """The physical column as SQL, optionally qualified with a table alias."""
        try:
            name = ident(self.physical[logical])
        except KeyError:
            raise PostmortemError(
                f"the {self.table} table has no column for {logical} (looked for "
                f"{', '.join(COLUMNS[self.table][logical])}); update COLUMNS in reports/columns.py"
            ) from None
        return f"{alias}.{name}" if alias else name

    def sel(self, logical: str, alias: str | None = None, default: str | None = None) -> str:
        """``physical AS logical`` for a SELECT list (just the name when they agree).

        With ``default`` (SQL text) a missing optional column is selected as that value.
        """
        if logical not in self.physical:
            if default is None:
                return self(logical)  # raises the one-sentence error
            return f"{default} AS {ident(logical)}"
        expr = self(logical, alias)
        return expr if self.physical[logical] == logical else f"{expr} AS {ident(logical)}"

    def sum0(self, logical: str, alias: str | None = None, where: str | None = None) -> str:
        """``coalesce(sum(col) [FILTER (WHERE ...)], 0)``, or ``NULL`` when the column is absent."""
        if logical not in self.physical:
            return "NULL"
        f = f" FILTER (WHERE {where})" if where else ""
        return f"coalesce(sum({self(logical, alias)}){f}, 0)"


def sql_text(text: str) -> str:
    """SQL text as stored and shown: the template's indentation removed, no blank edges or trailing spaces.

    The indentation of the first line is taken off every line that has it, so text interpolated
    without indentation (a join built elsewhere) does not stop the rest from being dedented.
    """
    lines = text.rstrip().lstrip("\n").splitlines()
    first = next((line for line in lines if line.strip()), "")
    n = len(first) - len(first.lstrip(" "))
    return "\n".join((line[n:] if line[:n].strip() == "" else line).rstrip() for line in lines)
