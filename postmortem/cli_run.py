"""`postmortem run` (ingest + replay + report for one incident) and `postmortem demo`."""

from __future__ import annotations

from pathlib import Path

import click

from postmortem.cli import cli
from postmortem.cli import WAREHOUSE_OPT
from postmortem.cli_ingest import _rpc_url, check_incident, run_plan, say_connecting, timeout_options, users_option
from postmortem.paths import DEFAULT_REPORTS
from postmortem.pipeline import run_incident


@cli.command("run")
@click.option("--incident", required=True, help="Incident id from the catalog (`postmortem incidents`).")
@click.option("--rpc-url", help="JSON-RPC URL (an archive node); default $POSTMORTEM_RPC_URL or the devchain's.")
@click.option("--from-block", type=click.IntRange(min=1), help="Override the incident's first block.")
@click.option("--to-block", type=click.IntRange(min=1), help="Override the incident's last block.")
@WAREHOUSE_OPT
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Report folder.")
@click.option("--requests-per-second", type=click.FloatRange(min=0.01), default=None, help="Cap on RPC calls per second.")
@timeout_options
@users_option
@click.option("--dry-run", is_flag=True,
              help="Print the plan (expected requests, reads, data, time; as `postmortem plan`) and stop.")
def run_cmd(incident, rpc_url, from_block, to_block, warehouse, out_dir, requests_per_second, timeout, retries,
            users, dry_run) -> None:
    """Ingest, replay and report one incident, resumably.

    \b
    Examples:
      postmortem run --incident devchain-wsteth-capo-2026-03-10          # after `devchain start`
      postmortem run --incident aave-v3-wsteth-capo-2026-03-10 --rpc-url "$RPC"   # an archive node
      POSTMORTEM_RPC_URL="$RPC" postmortem run --incident aave-v3-wsteth-capo-2026-03-10 --out report/

    Interrupted (Ctrl-C, exit code 130) or failed, the same command resumes where it stopped.
    """
    from postmortem.ingest.rpc import client_defaults

    check_incident(incident)  # before asking for or talking to any node
    if dry_run:
        run_plan(incident, rpc_url, requests_per_second=requests_per_second, users=users, from_block=from_block,
                 to_block=to_block, timeout=timeout, retries=retries)
        return
    url = _rpc_url(rpc_url, incident)
    say_connecting(url)
    with client_defaults(timeout=timeout, retries=retries):
        out = run_incident(incident, url, warehouse, from_block=from_block, to_block=to_block,
                           out_dir=out_dir, requests_per_second=requests_per_second,
                           users=users)
    _print_headline(out)


def _print_headline(out: dict) -> None:
    for sentence in out.get("headline", []):
        click.echo(click.wrap_text(sentence, width=100, preserve_paragraphs=True))
    click.echo("")
    rep = out.get("replay") or {}
    verdicts = rep.get("verdicts", {})
    click.echo(f"  liquidations: {rep.get('liquidations', 0)} "
               f"({verdicts.get('wrongly_eligible', 0)} wrongly eligible, {verdicts.get('eligible_anyway', 0)} eligible anyway, "
               f"{verdicts.get('anomaly', 0)} anomalies)")
    # The losses and what is owed are the headline's above, under the report's names (one number per
    # concept); the replay's own summary splits them differently, so it is not printed beside them.
    if rep.get("protocol") == "compound-v2":
        b = rep.get("borrow_verdicts", {})
        click.echo(f"  borrows: {rep.get('borrows', 0)} ({b.get('wrongly_allowed', 0)} wrongly allowed, "
                   f"{b.get('allowed', 0)} allowed, {b.get('anomaly', 0)} anomalies)")
    else:
        click.echo(f"  positions wrongly eligible but not liquidated: {rep.get('at_risk', 0)}")
    for fmt, path in sorted(out["report"].items()):
        click.echo(f"  report ({fmt}): {path}")


@cli.command("demo")
@click.option("--port", default=8545, show_default=True, help="Port for the local chain (a free one if taken).")
@WAREHOUSE_OPT
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Report folder (default {DEFAULT_REPORTS}/devchain-wsteth-capo-2026-03-10).")
def demo_cmd(port, warehouse, out_dir) -> None:
    """Start the local chain with the incident, run on it, stop it, print where the report is.

    This is what `make demo` runs. It takes about a minute.

    \b
    Examples:
      postmortem demo
      postmortem demo --port 18545 --warehouse /tmp/demo/wh --out /tmp/demo/report
    """
    from postmortem.devchain import manager
    from postmortem.devchain.node import free_port, port_in_use

    incident = "devchain-wsteth-capo-2026-03-10"
    if port_in_use(port):
        port = free_port()
    click.echo(f"starting the devchain on port {port} with scenario wsteth-capo-2026-03-10 ...")
    directory = manager.directory_for(port)  # its own manifest: another devchain's is left alone
    from postmortem.devchain.install import parts_ready, setup

    if not parts_ready():  # an installed postmortem on a new machine: fetch anvil and compile first
        setup(progress=True)
    node, started = manager.start(port, "wsteth-capo-2026-03-10", directory=directory, progress=True)
    try:
        click.echo("ingest, replay, report ...")
        out = run_incident(incident, node.url, warehouse, out_dir=out_dir, devchain_dir=directory)
    finally:
        node.stop()
        manager.stop(directory)
    gt = started["ground_truth"]["liquidations"]
    click.echo(f"ground truth: {len(gt)} liquidations, {sum(x['wrongly_eligible'] for x in gt)} wrongly eligible")
    _print_headline(out)
    html = out["report"].get("html") or next(iter(out["report"].values()), "")
    click.echo(f"\nreport: {html}")
