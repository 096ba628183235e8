"""`postmortem ingest`, `sql`, `schema`, `incidents`, `verify`."""

from __future__ import annotations

import difflib
import json
import os
import sys
from pathlib import Path

import click

from postmortem.cli import WAREHOUSE_OPT, cli  # noqa: F401  (WAREHOUSE_OPT: imported from here by older code)
from postmortem.errors import PostmortemError

RPC_URL_ENV = "POSTMORTEM_RPC_URL"


def _rpc_url(rpc_url: str | None, incident: str | None) -> str:
    if rpc_url:
        return rpc_url
    if incident:
        check_incident(incident)  # an unknown id is the first thing to hear about, before any URL
    if incident and incident.startswith("devchain-"):
        from postmortem.incidents import load_incident

        return load_incident(incident).raw["rpc_url"]
    env = os.environ.get(RPC_URL_ENV)
    if env:
        return env
    raise click.UsageError(f"give --rpc-url URL (an archive node for historical blocks), or set {RPC_URL_ENV}")


def check_incident(incident: str) -> None:
    """Raise a one-sentence error when ``incident`` is not in the catalog, with the closest id."""
    from postmortem.incidents import catalog

    ids = [d["id"] for d in catalog()]
    if incident in ids:
        return
    close = difflib.get_close_matches(incident, ids, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? " if close else ""
    raise PostmortemError(f"unknown incident {incident!r}; {hint}run `postmortem incidents` to see the catalog "
                          f"({len(ids)} incidents)")


def timeout_options(f):
    """``--timeout`` and ``--retries`` of every command that talks to a JSON-RPC node."""
    f = click.option("--retries", type=click.IntRange(min=0), default=None,
                     help="Retries of a failed request (resets, timeouts, HTTP 5xx, rate limits) before giving up "
                          "[default: 8].")(f)
    f = click.option("--timeout", type=click.FloatRange(min=0.1), default=None, metavar="SECONDS",
                     help="Seconds to wait for each JSON-RPC answer before retrying [default: 30]; raise it for a "
                          "slow node or large batches.")(f)
    return f


def users_option(f):
    """``--users incident|all``: whose positions at the start are read."""
    return click.option(
        "--users", type=click.Choice(["incident", "all"]), default=None,
        help="Whose positions at the start to read: `incident` = holders of the mispriced asset (from that "
             "reserve's own token Transfer logs) and every user in the window's logs [default for an incident]; "
             "`all` = every user who held any market token since --users-since [default for --pool].")(f)


def say_connecting(url: str) -> None:
    """A first line on stderr at once, so a slow node is visible from the first second."""
    from postmortem.redact import redact_url

    click.echo(f"ingest: asking {redact_url(url)} for the chain, its head and the markets ...", err=True)


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
@timeout_options
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
@users_option
@click.option("--multicall-batch", type=click.IntRange(0, 2000), default=None, metavar="N",
              help="Reads per Multicall3 aggregate3 eth_call where Multicall3 is deployed [default: 250]; "
                   "0 = plain eth_call batches only.")
def ingest_cmd(rpc_url, incident, pools, from_block, to_block, warehouse, requests_per_second, timeout, retries,
               max_concurrency, chunk_size, users_since, price_grid, allow_unfinalized, batch_size, users,
               multicall_batch) -> None:
    """Pull a block range from a JSON-RPC node into the warehouse.

    \b
    Examples:
      postmortem ingest --incident devchain-wsteth-capo-2026-03-10
      postmortem ingest --rpc-url "$RPC" --incident aave-v3-wsteth-capo-2026-03-10 --requests-per-second 20
      postmortem ingest --rpc-url "$RPC" --pool 0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2 \\
          --from-block 24626850 --to-block 24628100 --users-since 24000000
      POSTMORTEM_RPC_URL="$RPC" postmortem ingest --incident aave-v3-wsteth-capo-2026-03-10 --timeout 90

    Re-running is safe: complete chunks are skipped, interrupted ones (Ctrl-C, a crash, a node
    that gave up) fetched again. Exit codes: 2 a wrong option, URL or key; 1 the node kept
    failing; 130 interrupted.
    """
    from postmortem.ingest.pipeline import ingest
    from postmortem.ingest.rpc import client_defaults

    if incident and pools:
        raise click.UsageError("give either --incident or --pool, not both")
    if incident:
        check_incident(incident)  # before asking for or talking to any node
    if pools and users_since is None:
        users_since = from_block
    url = _rpc_url(rpc_url, incident)
    say_connecting(url)
    with client_defaults(timeout=timeout, retries=retries):
        summary = ingest(url, incident=incident, pools=list(pools) or None, from_block=from_block, to_block=to_block,
                         warehouse=warehouse, requests_per_second=requests_per_second, max_concurrency=max_concurrency,
                         chunk_size=chunk_size, users_since=users_since, price_grid=price_grid,
                         allow_unfinalized=allow_unfinalized, max_batch=batch_size, users=users,
                         multicall_batch=multicall_batch)
    cost = summary["cost"]
    if "markets" in summary or summary.get("skipped"):  # a compound-v2 ingest: one chunk, its own counts
        click.echo(f"ingested blocks {summary['from_block']}..{summary['to_block']} of chain {summary['chain_id']}: "
                   + (f"{summary['logs']} logs, {summary['events']} events, {summary['users']} users, "
                      f"{summary['market_reads']} market reads" if "markets" in summary else "already complete")
                   + f" in {summary['seconds']} s -> {warehouse}")
        click.echo(f"cost: {cost['requests']} HTTP requests, {cost['calls']} calls, {cost['reads']} reads, "
                   f"{cost['bytes_received']:,} bytes received, {cost['retries']} retries")
        return
    click.echo(f"ingested blocks {summary['from_block']}..{summary['to_block']} of chain {summary['chain_id']}: "
               f"{summary['logs']} logs, {summary['chunks']} chunks written, {summary['chunks_skipped']} already complete, "
               f"{summary['rpc']['calls']} calls in {summary['seconds']} s -> {warehouse}")
    click.echo(f"cost: {cost['requests']} HTTP requests, {cost['calls']} calls ({cost['getlogs_calls']} eth_getLogs, "
               f"{cost['eth_calls']} eth_call with {cost['reads']} reads), {cost['logs_received']} logs, "
               f"{cost['bytes_received']:,} bytes received, {cost['retries']} retries; users: {summary['users_scope']}")


@cli.command("plan")
@click.option("--incident", required=True, help="Incident id from the catalog (`postmortem incidents`).")
@click.option("--rpc-url", help="JSON-RPC URL; default $POSTMORTEM_RPC_URL, or the devchain's for devchain-* incidents.")
@click.option("--requests-per-second", type=click.FloatRange(min=0.01), default=None,
              help="The rate the run will be held to (a batch counts each call); the time is estimated at it.")
@users_option
@click.option("--from-block", type=click.IntRange(min=1), help="Override the incident's first block.")
@click.option("--to-block", type=click.IntRange(min=1), help="Override the incident's last block.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Calls per JSON-RPC batch, as the run will use.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Print the plan as text or JSON.")
@timeout_options
def plan_cmd(incident, rpc_url, requests_per_second, users, from_block, to_block, batch_size, fmt, timeout,
             retries) -> None:
    """Estimate what an ingest will cost before running it: requests, reads, data, time.

    Asks the node only what is cheap (chain id, head, finalized block, the markets, a few
    sampled eth_getLogs ranges) and writes nothing.

    \b
    Examples:
      postmortem plan --incident aave-v3-wsteth-capo-2026-03-10 --rpc-url "$RPC" --requests-per-second 25
      postmortem plan --incident aave-v3-wsteth-capo-2026-03-10 --users all --format json
    """
    run_plan(incident, rpc_url, requests_per_second=requests_per_second, users=users, from_block=from_block,
             to_block=to_block, batch_size=batch_size, fmt=fmt, timeout=timeout, retries=retries)


def run_plan(incident, rpc_url, *, requests_per_second=None, users=None, from_block=None, to_block=None,
             batch_size=100, fmt="text", timeout=None, retries=None, devchain_dir=None) -> dict:
    """``postmortem plan`` and ``postmortem run --dry-run``: print the estimate, return it."""
    from postmortem.incidents import load_incident
    from postmortem.ingest.plan import estimate, render
    from postmortem.ingest.rpc import client_defaults

    check_incident(incident)
    url = _rpc_url(rpc_url, incident)
    inc = load_incident(incident, devchain_dir=devchain_dir)
    if inc.protocol != "aave-v3":
        raise PostmortemError(f"plan estimates Aave v3 ingests only, and {incident} is a {inc.protocol} incident; run "
                              f"`postmortem ingest --incident {incident}` directly (its cost is recorded in `runs`)")
    allow = inc.finality == "latest"
    with client_defaults(timeout=timeout, retries=retries):
        p = estimate(url, incident=inc, users=users, requests_per_second=requests_per_second, from_block=from_block,
                     to_block=to_block, max_batch=batch_size, allow_unfinalized=allow)
    click.echo(json.dumps(p, indent=1) if fmt == "json" else render(p))
    return p


@cli.command("sql")
@click.argument("query", required=False)
@click.option("--file", "query_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="Q.sql",
              help="Read the query from this file instead of the QUERY argument.")
@WAREHOUSE_OPT
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "parquet"]), default=None,
              help="Output format [default: from the --out file's extension (.csv, .json, .parquet, .txt), "
                   "else table].")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the result to FILE (outside the warehouse) instead of the terminal; needed for parquet.")
@click.option("--output", "output_alias", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="Deprecated name of --out.")
def sql_cmd(query, query_file, warehouse, fmt, out, output_alias) -> None:
    """Run a read-only SQL QUERY over the warehouse (DuckDB dialect).

    QUERY is the SQL text, or `-` to read it from standard input; --file reads it from a file.

    \b
    Examples:
      postmortem sql "select count(*) from liquidations"
      postmortem sql "select user, debt_to_cover_units from liquidations order by 2 desc limit 5"
      postmortem sql "select * from verdicts" --out verdicts.csv        # CSV, from the extension
      postmortem sql "select * from health" --out health.parquet
      postmortem sql --file question.sql --format json
      echo "select * from runs" | postmortem sql -

    Queries cannot change the warehouse, attach databases, install extensions or write files
    other than --out. `postmortem schema` lists the tables.
    """
    from postmortem.sql import format_for_output, run_sql

    if out is not None and output_alias is not None and out != output_alias:
        raise click.UsageError("give --out FILE once (--output is its old name), not both")
    out = out if out is not None else output_alias
    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet needs --output FILE or --out FILE: parquet is binary")
    text_query = _query_text(query, query_file)
    fmt = format_for_output(fmt, out)
    text = run_sql(warehouse, text_query, fmt=fmt, output=out)
    if text is not None:
        click.echo(text.rstrip("\n"))
    elif out:
        click.echo(f"wrote {out}", err=True)


def _query_text(query: str | None, query_file: Path | None) -> str:
    if query is not None and query_file is not None:
        raise click.UsageError("give the query once: as QUERY, or with --file, not both")
    if query_file is not None:
        try:
            return query_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise PostmortemError(f"cannot read the query file {query_file} ({exc}); check the path") from None
    if query == "-":
        if sys.stdin is None or (sys.stdin.isatty() if hasattr(sys.stdin, "isatty") else False):
            raise click.UsageError("`postmortem sql -` reads the query from standard input; pipe it in, "
                                   "e.g. echo \"select 1\" | postmortem sql -")
        return sys.stdin.read()
    if query is None:
        raise click.UsageError('give a QUERY, e.g. postmortem sql "select count(*) from liquidations", '
                               "or `-` to read it from standard input, or --file Q.sql")
    return query


@cli.command("schema")
@click.argument("table", required=False)
@WAREHOUSE_OPT
def schema_cmd(table, warehouse) -> None:
    """List every table and view with column descriptions and units (or one TABLE).

    Works before anything is ingested (the documented tables); with a warehouse it also marks
    the tables that have no data yet and shows the warehouse's own views.

    \b
    Examples:
      postmortem schema
      postmortem schema liquidations
      postmortem schema glossary          # the quantities the report names
    """
    from postmortem.ingest.tables import register_docs
    from postmortem import schema_docs

    register_docs()
    _register_stage_docs()
    root = warehouse if Path(warehouse).exists() else None
    try:
        text = schema_docs.describe(table, root)
    except PostmortemError:
        if not table:
            raise
        names = [t.name for t in schema_docs.all_tables()] + [schema_docs.GLOSSARY_NAME]
        close = difflib.get_close_matches(table, names, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}? " if close else ""
        raise PostmortemError(f"no table named {table}; {hint}run `postmortem schema` to list tables") from None
    click.echo(text.rstrip("\n"))


def _register_stage_docs() -> None:
    for module in ("postmortem.replay.tables", "postmortem.reports.tables"):
        try:
            mod = __import__(module, fromlist=["register_docs"])
        except ImportError:
            continue
        if hasattr(mod, "register_docs"):
            mod.register_docs()


@cli.command("incidents")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Print the catalog as text or JSON.")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json.")
def incidents_cmd(fmt, as_json) -> None:
    """List the incident catalog (data/incidents/*.toml).

    \b
    Examples:
      postmortem incidents
      postmortem incidents --format json
    """
    from postmortem.incidents import catalog

    items = catalog()
    if as_json or fmt == "json":
        click.echo(json.dumps(items, indent=1))
        return
    for d in items:
        where = "local devchain" if d.get("source") == "devchain" else f"chain {d.get('chain_id')}, blocks {d.get('from_block')}..{d.get('to_block')}"
        click.echo(f"{d['id']}\n    {d.get('title', '')}\n    {where}")


@cli.command("verify")
@WAREHOUSE_OPT
@click.option("--repair", is_flag=True, help="Remove damaged chunks so the next ingest fetches them again.")
def verify_cmd(warehouse, repair) -> None:
    """Check every warehouse file against its manifest entry (presence, hash, readability).

    Exit code 0 when every file matches, 1 when something is damaged (each problem on its own
    line); --repair removes the damaged chunks so that the next ingest fetches them again.

    \b
    Examples:
      postmortem verify
      postmortem verify --warehouse /data/wh --repair
    """
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
