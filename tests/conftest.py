"""Shared fixtures: a real anvil node running the real Aave v3.6 contracts with a scenario.

The incident devchain is started once per test session (about 30 s) in a temporary folder and
shared read-only by every test that needs it; tests that change chain state use their own node.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from devchain import manager
from devchain.node import free_port

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
