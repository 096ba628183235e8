"""`postmortem devchain start|stop|status`: the local chain with a scenario."""

from __future__ import annotations

import json

import click

from postmortem.cli import cli


@cli.group()
def devchain() -> None:
    """The local chain: anvil running real Aave v3.6 contracts with a scenario.

    \b
    postmortem devchain start --scenario wsteth-capo-2026-03-10
    postmortem devchain status
    postmortem devchain stop
    """


@devchain.command("start")
@click.option("--port", default=8545, show_default=True, help="JSON-RPC port for anvil (must be free).")
@click.option("--scenario", default="wsteth-capo-2026-03-10", show_default=True,
              help="Scenario to run after deploying: wsteth-capo-2026-03-10, small, or scale.")
@click.option("--borrowers", type=click.IntRange(1, 1_000_000), default=None,
              help="Number of borrowers (the `scale` scenario only).")
def start_cmd(port: int, scenario: str, borrowers: int | None) -> None:
    """Start anvil, deploy Aave v3.6 (Core and Prime), run SCENARIO, write the manifest.

    The node keeps running in the background; the manifest (every address, the deploy block,
    the scenario summary) and the scenario's ground truth are written under data/devchain/.
    """
    from devchain import manager
    from devchain.scenario import load_scenario

    params = {"borrowers": borrowers} if borrowers else {}
    if borrowers and scenario != "scale":
        raise click.UsageError("--borrowers applies to the `scale` scenario only")
    load_scenario(scenario, **params)  # an unknown name fails before anything starts
    node, out = manager.start(port, scenario, progress=True, **params)
    s = out["manifest"]["summary"]
    click.echo(f"devchain running at {node.url} (chain id {out['manifest']['chain_id']}, pid {node.pid})")
    click.echo(f"scenario {scenario}: blocks {s['deploy_block']}..{s['end_block']}, "
               f"{s['liquidations']} liquidations ({s['liquidations_wrongly_eligible']} wrongly eligible by construction), "
               f"{s['seconds']} s")
    click.echo(f"manifest: {manager.manifest_path()}")


@devchain.command("stop")
def stop_cmd() -> None:
    """Stop the devchain started by `postmortem devchain start`."""
    from devchain import manager

    click.echo(manager.stop())


@devchain.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def status_cmd(as_json: bool) -> None:
    """Say whether the devchain runs, where, and with which scenario."""
    from devchain import manager

    m = manager.read_manifest()
    if as_json:
        click.echo(json.dumps(m, indent=1))
        return
    state = "running" if manager.is_running(m) else "stopped"
    click.echo(f"devchain {state}: {m['rpc_url']} scenario {m['scenario']} chain id {m['chain_id']}")
