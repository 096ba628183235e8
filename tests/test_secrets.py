"""An RPC URL with a key in its path, its query and its user:password never appears in any
output of a full run: logs, errors, the manifest, run records, Parquet files, reports."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from postmortem.devchain.faultproxy import FaultProxy
from postmortem.cli import _register, cli

pytestmark = pytest.mark.chain
KEY = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
PASSWORD = "hunter2-Secret"


def test_full_run_leaks_no_secret(incident_chain, tmp_path, caplog, capfd):
    from postmortem.pipeline import run_incident

    caplog.set_level(logging.DEBUG)
    # Faults make the client log retries, the place where URLs leak most often.
    plan = [{"kind": "http_429", "every": 9, "retry_after": 0}, {"kind": "reset", "every": 13}]
    with FaultProxy(incident_chain.url, plan, seed=2) as proxy:
        host = proxy.url.split("://", 1)[1].rstrip("/")
        url = f"http://user:{PASSWORD}@{host}/v3/{KEY}?apikey={KEY}"
        out = run_incident("devchain-wsteth-capo-2026-03-10", url, tmp_path / "wh", out_dir=tmp_path / "reports",
                           devchain_dir=incident_chain.directory)
        assert out["replay"]["liquidations"] == len(incident_chain.ground_truth["liquidations"])
        # An error path too: a wrong block range through the same URL.
        _register()
        bad = CliRunner().invoke(cli, ["ingest", "--rpc-url", url, "--pool", "0x" + "11" * 20, "--from-block", "5",
                                       "--to-block", "4", "--warehouse", str(tmp_path / "wh")])
        assert bad.exit_code != 0
    captured = capfd.readouterr()
    texts = [captured.out, captured.err, caplog.text, bad.output, repr(bad.exception)]
    for f in tmp_path.rglob("*"):
        if f.is_file():
            texts.append(f.read_bytes().decode("latin-1"))
    for secret in (KEY, PASSWORD):
        assert not any(secret in t for t in texts), f"{secret} leaked"
