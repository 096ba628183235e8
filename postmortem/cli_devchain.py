"""`postmortem devchain start|stop|status`: local chains with a scenario, one per port.

The devchain on the default port (8545) keeps its manifest in ``data/devchain/`` (what the
catalog's ``devchain-*`` incidents read); one on any other port P in ``data/devchain/port-P/``.
"""

from __future__ import annotations

import json

import click

from postmortem.cli import cli

DEFAULT_PORT = 8545  # devchain.manager.DEFAULT_PORT (not imported here: it pulls in web3)


def _first_sentence(text: str, limit: int = 88) -> str:
    text = " ".join(text.split())
    for stop in (". ", ": "):
        if stop in text:
            text = text.split(stop)[0]
    text = text.rstrip(".")
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def scenario_help_rows() -> list[tuple[str, str]]:
    """Every scenario (a file in devchain/scenarios/, plus the generated `scale`) and what it is."""
    from postmortem.devchain.scenario import SCENARIO_DIR, available_scenarios

    rows = []
    for name in available_scenarios():
        path = SCENARIO_DIR / f"{name}.json"
        if path.exists():
            try:
                desc = json.loads(path.read_text()).get("description", "")
            except json.JSONDecodeError:
                desc = "(this file is not valid JSON)"
        elif name == "scale":
            desc = "Generated, --borrowers N eMode borrowers on Core (default 2,000) for benchmarks"
        else:
            desc = ""
        rows.append((name, _first_sentence(desc)))
    return rows


class _StartCommand(click.Command):
    """`devchain start`, whose --help ends with every scenario read from devchain/scenarios/."""

    def format_epilog(self, ctx, formatter) -> None:
        with formatter.section("Scenarios (devchain/scenarios/*.json, and the generated scale)"):
            formatter.write_dl(scenario_help_rows())
        super().format_epilog(ctx, formatter)


@cli.group()
def devchain() -> None:
    """Local chains: anvil running real protocol contracts (Aave v3.6, or a Venus isolated pool for
    the Compound v2 lineage) with a scenario, one per port.

    \b
    postmortem devchain start --scenario wsteth-capo-2026-03-10    # :8545, data/devchain/
    postmortem devchain start --scenario small --port 18545        # data/devchain/port-18545/
    postmortem devchain start --scenario compound-lst-misprice --port 18546   # Venus (Compound v2)
    postmortem devchain status                                     # every running devchain
    postmortem devchain stop --port 18545
    postmortem devchain stop --all
    postmortem devchain setup                                      # install anvil and compile (once)
    """


@devchain.command("setup")
@click.option("--force", is_flag=True, help="Run npm install even when every part is there.")
def setup_cmd(force) -> None:
    """Install the local chain's parts and compile the contracts (once; later runs are no-ops).

    Installs npm @foundry-rs/anvil (the build for this platform), solc-js and the Aave sources at
    the versions the package pins, then compiles the contracts with solc-js (cached by the hash of
    every input). From a checkout `make setup` does the same; an installed postmortem keeps them in
    $POSTMORTEM_HOME (default ~/.local/share/postmortem). Needs Node.js 20+ with npm.

    \b
    Examples:
      postmortem devchain setup
      POSTMORTEM_HOME=/opt/postmortem postmortem devchain setup
    """
    from postmortem.devchain.install import setup

    out = setup(progress=True, force=force)
    click.echo(f"devchain parts ready; contracts in {out}")


def _running_ports() -> list[int]:
    from postmortem.devchain import manager

    return [int(m["port"]) for _d, m in manager.all_manifests() if m.get("port") and manager.is_running(m)]


@devchain.command("start", cls=_StartCommand)
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True,
              help="JSON-RPC port for anvil (must be free). The default port's devchain is the one "
                   "`devchain-*` incidents use.")
@click.option("--scenario", default="wsteth-capo-2026-03-10", show_default=True,
              help="Scenario to run after deploying (listed below).")
@click.option("--borrowers", type=click.IntRange(1, 1_000_000), default=None,
              help="Number of borrowers (the `scale` scenario only).")
def start_cmd(port: int, scenario: str, borrowers: int | None) -> None:
    """Start anvil on PORT, deploy SCENARIO's protocol (Aave v3.6 Core and Prime, or a Venus isolated
    pool for the compound-* scenarios), run SCENARIO, write the manifest.

    The node keeps running in the background until `postmortem devchain stop --port PORT`. Its
    manifest (every address, the deploy block, the scenario summary, port and pid) and the
    scenario's ground truth go to data/devchain/ for the default port, data/devchain/port-PORT/
    for any other; several devchains on different ports run side by side. The same scenario
    gives the same chain every time: the same blocks, timestamps, transactions, logs and state.
    """
    from postmortem.devchain import manager
    from postmortem.devchain.scenario import load_scenario

    params = {"borrowers": borrowers} if borrowers else {}
    if borrowers and scenario != "scale":
        raise click.UsageError("--borrowers applies to the `scale` scenario only")
    load_scenario(scenario, **params)  # an unknown name fails before anything starts
    directory = manager.directory_for(port)
    node, out = manager.start(port, scenario, directory=directory, progress=True, **params)
    s = out["manifest"]["summary"]
    click.echo(f"devchain running at {node.url} (chain id {out['manifest']['chain_id']}, pid {node.pid})")
    click.echo(f"scenario {scenario}: blocks {s['deploy_block']}..{s['end_block']}, "
               f"{s['liquidations']} liquidations ({s['liquidations_wrongly_eligible']} wrongly eligible by construction), "
               + (f"{s['borrows']} borrows ({s['borrows_wrongly_allowed']} wrongly allowed), " if "borrows" in s else "")
               + f"{s['seconds']} s")
    click.echo(f"manifest: {manager.manifest_path(directory)}")
    if port != DEFAULT_PORT:
        click.echo(f"stop it with: postmortem devchain stop --port {port}")


@devchain.command("stop")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help=f"Port of the devchain to stop (default {DEFAULT_PORT}).")
@click.option("--all", "stop_all", is_flag=True, help="Stop every running devchain.")
def stop_cmd(port: int | None, stop_all: bool) -> None:
    """Stop a devchain started by `postmortem devchain start` (its manifest is kept, marked stopped).

    \b
    postmortem devchain stop                 # the one on port 8545
    postmortem devchain stop --port 18545
    postmortem devchain stop --all
    """
    from postmortem.devchain import manager
    from postmortem.errors import PostmortemError

    if stop_all:
        if port is not None:
            raise click.UsageError("pass either --port or --all, not both")
        live = [(d, m) for d, m in manager.all_manifests() if not m.get("stopped")]
        if not live:
            click.echo("no devchain is running")
        for d, _m in live:
            click.echo(manager.stop(d))
        return
    target = DEFAULT_PORT if port is None else port
    path = manager.manifest_path(manager.directory_for(target))
    if not path.exists() or json.loads(path.read_text()).get("stopped"):
        others = [p for p in _running_ports() if p != target]
        if len(others) == 1:
            hint = f"a devchain runs on port {others[0]}: `postmortem devchain stop --port {others[0]}`"
        elif others:
            hint = f"devchains run on ports {', '.join(map(str, others))}; pass --port to stop one, or --all"
        else:
            hint = "`postmortem devchain status` lists the running ones"
        why = f"its manifest {path} is marked stopped" if path.exists() else f"no manifest at {path}"
        raise PostmortemError(f"no devchain is running on port {target} ({why}); {hint}")
    click.echo(manager.stop(port=target))


@devchain.command("status")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Only the devchain on this port.")
@click.option("--json", "as_json", is_flag=True,
              help="Print manifests as JSON: a list of every devchain's, or the one of --port.")
def status_cmd(port: int | None, as_json: bool) -> None:
    """List every running devchain: port, scenario, chain id, URL and manifest.

    Manifests of stopped devchains are kept (marked stopped); they are counted, not listed.
    """
    from postmortem.devchain import manager

    if port is not None:
        m = manager.read_manifest(manager.directory_for(port))
        if as_json:
            click.echo(json.dumps({**m, "running": manager.is_running(m)}, indent=1))
            return
        state = "running" if manager.is_running(m) else "stopped"
        click.echo(f"port {port}: {state}, scenario {m['scenario']}, chain id {m['chain_id']}, {m['rpc_url']}, "
                   f"manifest {manager.manifest_path(manager.directory_for(port))}")
        return
    found = [(d, m, manager.is_running(m)) for d, m in manager.all_manifests()]
    if as_json:
        click.echo(json.dumps([{**m, "running": running} for _d, m, running in found], indent=1))
        return
    running = [(d, m) for d, m, r in found if r]
    if not running:
        click.echo("no devchain is running; start one with `postmortem devchain start`")
    for d, m in running:
        default = " (the one devchain-* incidents use)" if d == manager.directory_for(DEFAULT_PORT) else ""
        click.echo(f"port {m.get('port')}: running{default}, scenario {m['scenario']}, chain id {m['chain_id']}, "
                   f"{m['rpc_url']}, manifest {manager.manifest_path(d)}")
    stopped = [m for _d, m, r in found if not r]
    if stopped:
        click.echo(f"{len(stopped)} stopped devchain manifest(s) kept: port "
                   f"{', '.join(str(m.get('port')) for m in stopped)}")
