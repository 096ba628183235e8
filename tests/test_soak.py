"""The short soak: random faults, kills and resumes end identical to a clean run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from postmortem.incidents import devchain_window

pytestmark = pytest.mark.chain


def _soak_module():
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "soak.py"
    spec = importlib.util.spec_from_file_location("soak", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_short_soak(small_chain, tmp_path):
    s = small_chain.manifest["summary"]
    inc = devchain_window(small_chain.manifest, "soak", from_block=s["deploy_block"] + 1)
    result = _soak_module().soak(url=small_chain.url, incident=inc, workdir=tmp_path, kills=2, seed=5,
                                 chunk_size=8, max_seconds=300)
    assert result["identical"] and result["restarts"] >= 2
    assert sum(v for k, v in result["faults_injected"].items() if k != "requests") >= 3
    assert result["rows_total"] > 100
