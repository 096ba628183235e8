"""Start a devchain with a scenario, write its manifest and ground truth; stop it.

The manifest (``data/devchain/manifest.json`` by default) names the chain id, the Aave
revision, every address, the deploy block and the scenario summary; the ground truth
(``ground_truth.json`` beside it) lists every liquidation with its verdict by construction.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from devchain.chain import Artifacts, Chain
from devchain.node import AnvilNode, rpc_ready, start_anvil, stop_pid
from devchain.scenario import ScenarioRunner, load_scenario
from postmortem import __version__
from postmortem.errors import PostmortemError
from postmortem.paths import DEVCHAIN_DIR

MANIFEST_NAME = "manifest.json"
GROUND_TRUTH_NAME = "ground_truth.json"


def manifest_path(directory: Path | None = None) -> Path:
    return (directory or DEVCHAIN_DIR) / MANIFEST_NAME


def read_manifest(directory: Path | None = None) -> dict:
    path = manifest_path(directory)
    if not path.exists():
        raise PostmortemError(
            f"no devchain manifest at {path}; start one with `postmortem devchain start --scenario wsteth-capo-2026-03-10`"
        )
    return json.loads(path.read_text())


def _write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n")
    os.replace(tmp, path)


def run_scenario_on(url: str, scenario_name: str, *, progress: bool = False, **params) -> dict:
    """Deploy and run a scenario on the node at ``url``; returns manifest and ground truth."""
    scenario = load_scenario(scenario_name, **params)
    chain = Chain(url, Artifacts.load())
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
        "deploy_block": 1,
        "summary": result["summary"],
        "addresses": result["book"],
        "true_rate": scenario.get("true_rate"),
    }
    return {"manifest": manifest, "ground_truth": {"scenario": scenario["name"], **result["ground_truth"]}}


def start(port: int = 8545, scenario: str = "wsteth-capo-2026-03-10", *, directory: Path | None = None,
          detach: bool = True, progress: bool = False, **params) -> tuple[AnvilNode, dict]:
    """Start anvil on ``port``, run ``scenario`` on it and write the manifest. The node keeps
    running (detached) until ``stop``."""
    directory = directory or DEVCHAIN_DIR
    load_scenario(scenario, **params)  # unknown names fail before anything starts
    sc = load_scenario(scenario, **params)
    directory.mkdir(parents=True, exist_ok=True)
    node = start_anvil(port, timestamp=sc.get("genesis_timestamp"), detach=detach,
                       log_path=directory / "anvil.log")
    try:
        out = run_scenario_on(node.url, scenario, progress=progress, **params)
    except BaseException:
        node.stop()
        raise
    out["manifest"]["pid"] = node.pid
    out["manifest"]["port"] = port if port else node.port
    out["manifest"]["started_at"] = int(time.time())
    _write_json(directory / MANIFEST_NAME, out["manifest"])
    _write_json(directory / GROUND_TRUTH_NAME, out["ground_truth"])
    return node, out


def stop(directory: Path | None = None) -> str:
    path = manifest_path(directory)
    if not path.exists():
        return "no devchain is running (no manifest found)"
    manifest = json.loads(path.read_text())
    pid = manifest.get("pid")
    if pid and stop_pid(int(pid)):
        msg = f"stopped the devchain (pid {pid}, port {manifest.get('port')})"
    else:
        msg = "the devchain was not running any more"
    manifest["stopped"] = True
    _write_json(path, manifest)
    return msg


def is_running(manifest: dict) -> bool:
    return not manifest.get("stopped") and rpc_ready(manifest["rpc_url"])
