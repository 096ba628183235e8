"""`postmortem ingest`, `sql`, `schema`, `incidents`, `verify`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from postmortem.cli import cli
from postmortem.paths import DEFAULT_WAREHOUSE

WAREHOUSE_OPT = click.option("--warehouse", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WAREHOUSE,
                             show_default=True, help="Warehouse directory (Parquet files + catalog.duckdb).")


def _rpc_url(rpc_url: str | None, incident: str | None) -> str:
    if rpc_url:
        return rpc_url
    if incident and incident.startswith("devchain-"):
        from postmortem.incidents import load_incident

        return load_incident(incident).raw["rpc_url"]
    env = os.environ.get("POSTMORTEM_RPC_URL")
    if env:
        return env
    raise click.UsageError("give --rpc-url URL (an archive node for historical blocks), or set POSTMORTEM_RPC_URL")


@cli.command("ingest")
@click.option("--rpc-url", help="JSON-RPC URL; an archive node for old blocks. Keys in it are never printed or stored. "
              "Default: $POSTMORTEM_RPC_URL, or the devchain's for devchain-* incidents.")
@click.option("--incident", help="Incident id from the catalog (`postmortem incidents`): pools, range and chain id.")
@click.option("--pool", "pools", multiple=True, help="Aave v3 Pool address (repeatable), instead of --incident.")
@click.option("--from-block", type=click.IntRange(min=1), help="First block (inclusive).")
@click.option("--to-block", type=click.IntRange(min=1), help="Last block (inclusive).")
@WAREHOUSE_OPT
@click.option("--requests-per-second", type=click.FloatRange(min=0.01), default=None,
              help="Cap on JSON-RPC calls per second (a batch counts each call). Default: no cap.")
@click.option("--max-concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="JSON-RPC requests in flight at once.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Blocks per Parquet chunk (the unit of resume).")
@click.option("--users-since", type=click.IntRange(min=0), default=None,
              help="Find users holding market tokens from Transfer logs since this block (default: the incident's, "
                   "or --from-block).")
@click.option("--price-grid", type=click.IntRange(min=0), default=None,
              help="Also read oracle prices every N blocks (0 = only blocks with activity).")
@click.option("--allow-unfinalized", is_flag=True, help="Ingest past the node's finalized block.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Calls per JSON-RPC batch (Erigon allows 100 by default).")
def ingest_cmd(rpc_url, incident, pools, from_block, to_block, warehouse, requests_per_second, max_concurrency,
               chunk_size, users_since, price_grid, allow_unfinalized, batch_size) -> None:
    """Pull a block range from a JSON-RPC node into the warehouse.

    \b
    Examples:
      postmortem ingest --incident devchain-wsteth-capo-2026-03-10
      postmortem ingest --rpc-url $RPC --incident aave-v3-wsteth-capo-2026-03-10 --requests-per-second 20
      postmortem ingest --rpc-url $RPC --pool 0x8787... --from-block 24626850 --to-block 24628100

    Re-running is safe: complete chunks are skipped, interrupted ones fetched again.
    """
    from ingest.pipeline import ingest

    if incident and pools:
        raise click.UsageError("give either --incident or --pool, not both")
    if pools and users_since is None:
        users_since = from_block
    url = _rpc_url(rpc_url, incident)
    summary = ingest(url, incident=incident, pools=list(pools) or None, from_block=from_block, to_block=to_block,
                     warehouse=warehouse, requests_per_second=requests_per_second, max_concurrency=max_concurrency,
                     chunk_size=chunk_size, users_since=users_since, price_grid=price_grid,
                     allow_unfinalized=allow_unfinalized, max_batch=batch_size)
    click.echo(f"ingested blocks {summary['from_block']}..{summary['to_block']} of chain {summary['chain_id']}: "
               f"{summary['logs']} logs, {summary['chunks']} chunks written, {summary['chunks_skipped']} already complete, "
               f"{summary['rpc']['calls']} calls in {summary['seconds']} s -> {warehouse}")


@cli.command("sql")
@click.argument("query")
@WAREHOUSE_OPT
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the result to FILE (needed for parquet).")
def sql_cmd(query, warehouse, fmt, output) -> None:
    """Run a read-only SQL QUERY over the warehouse (DuckDB dialect).

    \b
    Examples:
      postmortem sql "select count(*) from liquidations"
      postmortem sql "select user, debt_to_cover_units from liquidations order by 2 desc limit 5"
      postmortem sql "select * from verdicts" --format csv --output verdicts.csv

    Queries cannot change the warehouse, attach databases, install extensions or write files
    other than --output. `postmortem schema` lists the tables.
    """
    from postmortem.sql import run_sql

    if fmt == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    text = run_sql(warehouse, query, fmt=fmt, output=output)
    if text is not None:
        click.echo(text.rstrip("\n"))
    elif output:
        click.echo(f"wrote {output}", err=True)


@cli.command("schema")
@click.argument("table", required=False)
@WAREHOUSE_OPT
def schema_cmd(table, warehouse) -> None:
    """List every table and view with column descriptions and units (or one TABLE)."""
    from ingest.tables import register_docs
    from postmortem.schema_docs import describe

    register_docs()
    _register_stage_docs()
    click.echo(describe(table, warehouse if Path(warehouse).exists() else None).rstrip("\n"))


def _register_stage_docs() -> None:
    for module in ("replay.tables", "reports.tables"):
        try:
            mod = __import__(module, fromlist=["register_docs"])
        except ImportError:
            continue
        if hasattr(mod, "register_docs"):
            mod.register_docs()


@cli.command("incidents")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog as JSON.")
def incidents_cmd(as_json) -> None:
    """List the incident catalog (data/incidents/*.toml)."""
    from postmortem.incidents import catalog

    items = catalog()
    if as_json:
        click.echo(json.dumps(items, indent=1))
        return
    for d in items:
        where = "local devchain" if d.get("source") == "devchain" else f"chain {d.get('chain_id')}, blocks {d.get('from_block')}..{d.get('to_block')}"
        click.echo(f"{d['id']}\n    {d.get('title', '')}\n    {where}")


@cli.command("verify")
@WAREHOUSE_OPT
@click.option("--repair", is_flag=True, help="Remove damaged chunks so the next ingest fetches them again.")
def verify_cmd(warehouse, repair) -> None:
    """Check every warehouse file against its manifest entry (presence, hash, readability)."""
    from postmortem.errors import PostmortemError
    from postmortem.warehouse import Warehouse

    if not Path(warehouse).exists():
        raise PostmortemError(f"no warehouse at {warehouse}; run `postmortem ingest` first or pass --warehouse")
    wh = Warehouse(Path(warehouse))
    problems = wh.verify()
    for p in problems:
        click.echo(f"{p.kind}: {p.description}")
    if not problems:
        click.echo("warehouse OK: every file matches its manifest entry")
        return
    if repair:
        for line in wh.repair(problems):
            click.echo(line)
        click.echo("repaired: re-run the same ingest to fetch the removed chunks again")
    else:
        raise SystemExit(1)
