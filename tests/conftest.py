"""Shared fixtures: a real anvil node running the real Aave v3.6 contracts with a scenario.

The incident devchain is started once per test session (about 30 s) in a temporary folder and
shared read-only by every test that needs it; tests that change chain state use their own node.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from postmortem.devchain import manager
from postmortem.devchain.node import free_port

REPO = Path(__file__).resolve().parent.parent


class Devchain:
    def __init__(self, node, directory: Path, out: dict):
        self.node = node
        self.directory = directory
        self.manifest = out["manifest"]
        self.ground_truth = out["ground_truth"]
        self.url = node.url
        self.w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))

    @property
    def addresses(self) -> dict:
        return self.manifest["addresses"]


def _start(tmp_path_factory, scenario: str, **params) -> Devchain:
    directory = tmp_path_factory.mktemp(f"devchain-{scenario}")
    node, out = manager.start(free_port(), scenario, directory=directory, detach=False, **params)
    return Devchain(node, directory, out)


@pytest.fixture(scope="module")
def node():
    """A plain anvil (no contracts) for one test module: RPC client, range and proxy tests."""
    from postmortem.devchain.node import start_anvil

    n = start_anvil()
    try:
        yield n
    finally:
        n.stop()


@pytest.fixture(scope="session")
def incident_chain(tmp_path_factory):
    """The 2026-03-10 wstETH incident reproduced on anvil (read-only for tests)."""
    dc = _start(tmp_path_factory, "wsteth-capo-2026-03-10")
    yield dc
    dc.node.stop()


@pytest.fixture(scope="session")
def small_chain(tmp_path_factory):
    """The small fast scenario."""
    dc = _start(tmp_path_factory, "small")
    yield dc
    dc.node.stop()


def load_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def devchain_incident(dc: Devchain, incident_id: str = "devchain-wsteth-capo-2026-03-10"):
    """The catalog's devchain incident resolved against this test's devchain."""
    from postmortem.incidents import load_incident

    return load_incident(incident_id, devchain_dir=dc.directory)


@pytest.fixture(scope="session")
def incident_warehouse(incident_chain, tmp_path_factory):
    """The devchain incident ingested once into a warehouse (read-only for tests)."""
    from postmortem.ingest.pipeline import ingest

    root = tmp_path_factory.mktemp("warehouse-incident")
    inc = devchain_incident(incident_chain)
    summary = ingest(incident_chain.url, incident=inc, warehouse=root, progress=False)
    return {"root": root, "incident": inc, "summary": summary}


def warehouse_rows(root: Path, skip: tuple[str, ...] = ("runs", "warehouse_files", "catalog_info")) -> dict[str, list]:
    """Every row of every dataset, sorted, for comparing two warehouses."""
    import duckdb

    out = {}
    for ds_dir in sorted(p for p in Path(root).glob("*/*") if p.is_dir()):
        name = ds_dir.name
        if name in skip or name == "outputs":
            continue
        con = duckdb.connect()
        rows = con.execute(f"select * from read_parquet('{ds_dir}/*.parquet', union_by_name=true)").fetchall()
        out[name] = sorted(rows, key=repr)
    return out


# Fixtures that start or need a local anvil: a test using any of them is a chain test, whatever its
# module says, so `make test-fast` (-m "not chain and not slow") never waits for a chain.
CHAIN_FIXTURES = {"node", "incident_chain", "small_chain", "incident_warehouse"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if CHAIN_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.chain)
