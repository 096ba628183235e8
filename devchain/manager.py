"""Start a devchain with a scenario, write its manifest and ground truth; stop it.

Each devchain has its own folder, chosen by its port, so several can run side by side:

* the default port (8545): ``data/devchain/`` itself (``$POSTMORTEM_DEVCHAIN_DIR``); this is
  the manifest the catalog's ``devchain-*`` incidents read;
* any other port P: ``data/devchain/port-P/``.

The manifest (``manifest.json``) names the chain id, the Aave revision, every address, the
deploy block, the scenario summary, the node's port and pid; the ground truth
(``ground_truth.json`` beside it) lists every liquidation with its verdict by construction;
``anvil.log`` is the node's own output.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from postmortem.devchain.chain import Artifacts, Chain
from postmortem.devchain.node import AnvilNode, port_in_use, remove_state_home, rpc_ready, start_anvil, stop_pid
from postmortem.devchain.scenario import ScenarioRunner, genesis_timestamp, load_scenario
from postmortem import __version__, atomic
from postmortem.errors import PostmortemError
from postmortem.devchain_manifest import MANIFEST_NAME, manifest_path, read_manifest  # noqa: F401 (re-exported)
from postmortem.paths import DEVCHAIN_DIR

GROUND_TRUTH_NAME = "ground_truth.json"
DEFAULT_PORT = 8545
PORT_DIR_PREFIX = "port-"
ANVIL_HOME = "anvil-home"  # the block states anvil spills to disk; removed when the devchain stops


def directory_for(port: int | None = None) -> Path:
    """The folder of the devchain on ``port``: ``data/devchain/`` for the default port (the
    one ``devchain-*`` incidents read), ``data/devchain/port-P/`` for any other."""
    if port is None or int(port) == DEFAULT_PORT:
        return DEVCHAIN_DIR
    return DEVCHAIN_DIR / f"{PORT_DIR_PREFIX}{int(port)}"


def all_manifests() -> list[tuple[Path, dict]]:
    """Every devchain manifest, the default port's first, then by port: (folder, manifest)."""
    dirs = [DEVCHAIN_DIR]
    if DEVCHAIN_DIR.is_dir():
        ports = []
        for p in DEVCHAIN_DIR.glob(f"{PORT_DIR_PREFIX}*"):
            suffix = p.name[len(PORT_DIR_PREFIX):]
            if suffix.isdigit() and (p / MANIFEST_NAME).exists():
                ports.append((int(suffix), p))
        dirs += [p for _, p in sorted(ports)]
    out = []
    for d in dirs:
        path = d / MANIFEST_NAME
        if path.exists():
            try:
                out.append((d, json.loads(path.read_text())))
            except json.JSONDecodeError:
                continue  # a damaged manifest names no devchain we could stop anyway
    return out


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def run_scenario_on(url: str, scenario_name: str, *, progress: bool = False, **params) -> dict:
    """Deploy and run a scenario on the node at ``url``; returns manifest and ground truth."""
    scenario = load_scenario(scenario_name, **params)
    if scenario.get("runner") == "compound-v2":  # a Venus isolated pool: its own runner and manifest
        from postmortem.devchain.compound.runner import run_compound_scenario

        return run_compound_scenario(url, scenario, params, progress=progress)
    chain = Chain(url, Artifacts.load())
    if scenario.get("runner") == "twin":  # the mainnet twin: contracts at mainnet addresses
        from postmortem.devchain.twin_run import TwinRunner

        result = TwinRunner(chain, scenario, progress=progress).run()
    else:
        result = ScenarioRunner(chain, scenario, progress=progress).run()
    chain_id = chain.w3.eth.chain_id
    manifest = {
        "tool_version": __version__,
        "chain_id": chain_id,
        "rpc_url": url,
        # Each market's own revision is in addresses.markets.<name>.revision ("3.0" for one
        # deployed from the @aave/core-v3 artifacts); this names them all.
        "aave_revision": ",".join(sorted({m["revision"] for m in result["book"]["markets"].values()})),
        "scenario": scenario["name"],
        "scenario_params": params,
        "deploy_block": result["summary"].get("genesis_block", 1),
        "summary": result["summary"],
        "addresses": result["book"],
        "true_rate": scenario.get("true_rate"),
    }
    return {"manifest": manifest, "ground_truth": {"scenario": scenario["name"], **result["ground_truth"]}}


def _check_port_free(port: int, directory: Path) -> None:
    if not port_in_use(port):
        return
    path = manifest_path(directory)
    if path.exists():
        try:
            m = json.loads(path.read_text())
        except json.JSONDecodeError:
            m = {}
        if not m.get("stopped") and m.get("scenario"):
            raise PostmortemError(
                f"a devchain with scenario {m['scenario']} already runs on port {port}; stop it with "
                f"`postmortem devchain stop --port {port}` or pass --port with a free port"
            )
    raise PostmortemError(
        f"port {port} is already in use by another program; pass --port with a free port, or stop what listens there"
    )


def start(port: int = DEFAULT_PORT, scenario: str = "wsteth-capo-2026-03-10", *, directory: Path | None = None,
          detach: bool = True, progress: bool = False, **params) -> tuple[AnvilNode, dict]:
    """Start anvil on ``port``, run ``scenario`` on it and write the manifest into ``directory``
    (default: the port's own folder, ``directory_for(port)``). The node keeps running
    (detached) until ``stop``. A manifest already there is replaced only once the new chain is
    ready; on failure it is left as it was."""
    directory = directory or directory_for(port)
    sc = load_scenario(scenario, **params)  # unknown names fail before anything starts
    if port:
        _check_port_free(port, directory)
    directory.mkdir(parents=True, exist_ok=True)
    node = start_anvil(port, timestamp=genesis_timestamp(sc), detach=detach,
                       log_path=directory / "anvil.log", extra_args=sc.get("anvil_args"),
                       state_home=directory / ANVIL_HOME)
    try:
        out = run_scenario_on(node.url, scenario, progress=progress, **params)
    except BaseException:
        node.stop()
        raise
    out["manifest"]["pid"] = node.pid
    out["manifest"]["port"] = node.port
    out["manifest"]["started_at"] = int(time.time())
    _write_json(directory / GROUND_TRUTH_NAME, out["ground_truth"])
    _write_json(directory / MANIFEST_NAME, out["manifest"])
    return node, out


def _is_our_anvil(pid: int, port: int | None) -> bool:
    """True when ``pid`` is (still) an anvil started for ``port``, so that a pid the system has
    since given to another program is never signalled."""
    if not Path("/proc/self").exists():  # no procfs (macOS): trust a node answering on its port
        return port is not None and rpc_ready(f"http://127.0.0.1:{port}")
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not args or not args[0].endswith(b"anvil"):
        return False
    return port is None or str(port).encode() in args


def stop(directory: Path | None = None, *, port: int | None = None) -> str:
    """Stop the devchain whose manifest is in ``directory`` (or the one on ``port``; default:
    the default port's). Marks its manifest stopped; says what it did."""
    if directory is None:
        directory = directory_for(port)
    path = manifest_path(directory)
    where = f"port {port}" if port is not None else f"{directory}"
    if not path.exists():
        raise PostmortemError(
            f"no devchain was started on {where} (no manifest at {path}); `postmortem devchain status` "
            "lists the devchains there are"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("stopped"):
        raise PostmortemError(
            f"the devchain on port {manifest.get('port')} is already stopped; `postmortem devchain status` "
            "lists the running ones"
        )
    pid = manifest.get("pid")
    if pid and _is_our_anvil(int(pid), manifest.get("port")) and stop_pid(int(pid)):
        msg = f"stopped the devchain on port {manifest.get('port')} (pid {pid}, scenario {manifest.get('scenario')})"
    else:
        msg = f"the devchain on port {manifest.get('port')} had already exited; its manifest is marked stopped"
    remove_state_home(directory / ANVIL_HOME)
    manifest["stopped"] = True
    _write_json(path, manifest)
    return msg


def is_running(manifest: dict) -> bool:
    return not manifest.get("stopped") and rpc_ready(manifest["rpc_url"])
