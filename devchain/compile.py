"""Compile the devchain's contracts with solc-js, cached by the hash of every input.

Inputs: the Aave v3.6 sources from npm ``@aave-dao/aave-v3-origin`` (the entry points of a
market), OpenZeppelin 5.x from npm, and the project's own contracts in ``devchain/contracts``.
Output: ``build/contracts/<hash>/artifacts.json`` holding ABI, bytecode and link references
per contract. Compiling is part of set-up (``make contracts``); a run reuses the cache.

The v3.0.x market uses the compiled artifacts shipped in npm ``@aave/core-v3`` instead
(see ``devchain.artifacts``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from postmortem import atomic
from postmortem.errors import PostmortemError
from postmortem.paths import BUILD_DIR, NODE_MODULES, SETUP_COMMAND

HERE = Path(__file__).resolve().parent
OWN_CONTRACTS = HERE / "contracts"
AAVE_PKG = "@aave-dao/aave-v3-origin"
AAVE_SRC = f"{AAVE_PKG}/src/contracts"
# The npm packages the compile reads (anvil is checked where it is started), and the Venus
# artifacts the compound-v2 devchain deploys as shipped (so that `devchain setup` installs them).
NPM_PARTS = (AAVE_PKG, "@aave/core-v3", "@openzeppelin/contracts", "@bgd-labs/solidity-utils", "solc",
             "@venusprotocol/isolated-pools")

AAVE_ENTRY_POINTS = [
    "instances/PoolInstance.sol",
    "instances/PoolConfiguratorInstance.sol",
    "instances/ATokenInstance.sol",
    "instances/VariableDebtTokenInstance.sol",
    "misc/DefaultReserveInterestRateStrategyV2.sol",
    "misc/AaveOracle.sol",
    "protocol/configuration/ACLManager.sol",
    "protocol/configuration/PoolAddressesProvider.sol",
    "helpers/AaveProtocolDataProvider.sol",
    "protocol/libraries/helpers/Errors.sol",
]

REMAPPINGS = [
    ("openzeppelin-contracts/contracts/", "@openzeppelin/contracts/"),
    ("openzeppelin-contracts-upgradeable/contracts/", "@openzeppelin/contracts-upgradeable/"),
    ("solidity-utils/contracts/", "@bgd-labs/solidity-utils/src/contracts/"),
]

SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "shanghai",
    "metadata": {"bytecodeHash": "none"},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.bytecode.linkReferences"]}},
}


def _solc_version() -> str:
    pkg = NODE_MODULES / "solc" / "package.json"
    if not pkg.exists():
        raise PostmortemError(f"solc-js is not installed in {NODE_MODULES}; run `{SETUP_COMMAND}` first")
    return json.loads(pkg.read_text())["version"]


def _check_npm_parts() -> None:
    for part in NPM_PARTS:
        if not (NODE_MODULES / part).exists():
            raise PostmortemError(f"npm package {part} is missing from {NODE_MODULES}; run `{SETUP_COMMAND}` first")
    if shutil.which("node") is None:
        raise PostmortemError("Node.js is not on PATH; install Node.js 20+ (it runs the solc-js compiler)")


def _input_files() -> list[Path]:
    """Every file whose content can change the compile output."""
    files = sorted((NODE_MODULES / AAVE_SRC).rglob("*.sol"))
    # Only the OpenZeppelin packages the sources import: other @openzeppelin packages (the
    # Venus artifacts' hardhat plugins) hold compiled output in folders named like ``X.sol``.
    for oz in ("@openzeppelin/contracts", "@openzeppelin/contracts-upgradeable"):
        files += sorted((NODE_MODULES / oz).rglob("*.sol"))
    files += sorted((NODE_MODULES / "@bgd-labs/solidity-utils/src/contracts").rglob("*.sol"))
    files += sorted(OWN_CONTRACTS.glob("*.sol"))
    files.append(HERE / "solc_compile.cjs")
    return [f for f in files if f.is_file()]


def input_hash() -> str:
    h = hashlib.sha256()
    h.update(_solc_version().encode())
    h.update(json.dumps([SETTINGS, REMAPPINGS, AAVE_ENTRY_POINTS], sort_keys=True).encode())
    for f in _input_files():
        # Paths relative to their root, so a clone elsewhere shares the same cache key.
        root = NODE_MODULES if NODE_MODULES in f.parents else HERE
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def artifacts_path() -> Path:
    return BUILD_DIR / "contracts" / input_hash() / "artifacts.json"


def compile_all(force: bool = False, quiet: bool = False) -> Path:
    """Compile (or reuse the cache) and return the path of ``artifacts.json``."""
    _check_npm_parts()
    out = artifacts_path()
    if out.exists() and not force:
        if not quiet:
            print(f"contracts: up to date ({out.relative_to(BUILD_DIR.parent) if BUILD_DIR.parent in out.parents else out})")
        return out
    sources = {f"{AAVE_SRC}/{p}": {"urls": []} for p in AAVE_ENTRY_POINTS}
    for f in sorted(OWN_CONTRACTS.glob("*.sol")):
        sources[f"postmortem/{f.name}"] = {"content": f.read_text()}
    # Entry points given by name only: load their content through the same resolver.
    for key in list(sources):
        if "content" not in sources[key]:
            sources[key] = {"content": (NODE_MODULES / key).read_text()}
    request = {
        "input": {"language": "Solidity", "sources": sources, "settings": {**SETTINGS, "remappings": []}},
        "remappings": REMAPPINGS,
        "roots": {"postmortem/": str(OWN_CONTRACTS), "": str(NODE_MODULES)},
    }
    if not quiet:
        print(f"contracts: compiling Aave v3.6 and devchain contracts with solc-js {_solc_version()} ...", flush=True)
    t0 = time.monotonic()
    proc = subprocess.run(
        ["node", str(HERE / "solc_compile.cjs")],
        input=json.dumps(request).encode(),
        capture_output=True,
        cwd=NODE_MODULES.parent,
        # the driver may live in an installed package, away from node_modules: say where solc is
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
    )
    if proc.returncode != 0:
        raise PostmortemError(f"solc-js failed: {proc.stderr.decode(errors='replace')[-500:]}")
    result = json.loads(proc.stdout)
    errors = [e for e in result.get("errors", []) if e.get("severity") == "error"]
    if errors:
        msg = "; ".join(e.get("formattedMessage", e.get("message", "")).strip() for e in errors[:3])
        raise PostmortemError(f"contract compilation failed: {msg}")
    artifacts: dict[str, dict] = {}
    for source, contracts in result["contracts"].items():
        for name, c in contracts.items():
            entry = {
                "source": source,
                "abi": c["abi"],
                "bytecode": c["evm"]["bytecode"]["object"],
                "linkReferences": c["evm"]["bytecode"].get("linkReferences", {}),
            }
            # Interfaces share names across files; prefer a deployable contract's entry.
            if name in artifacts and not entry["bytecode"]:
                continue
            artifacts[name] = entry
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out, json.dumps({"solc": _solc_version(), "settings": SETTINGS, "contracts": artifacts}))
    if not quiet:
        print(f"contracts: compiled {len(artifacts)} contracts in {time.monotonic() - t0:.1f} s -> {out}")
    return out


def main() -> None:
    try:
        compile_all(force="--force" in sys.argv)
    except PostmortemError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
