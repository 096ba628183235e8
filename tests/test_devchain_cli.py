"""`postmortem devchain start|stop|status` with several devchains (issue 10 item 8).

Real `postmortem` processes (so the detached anvil outlives the command, as for a user) with
``POSTMORTEM_DEVCHAIN_DIR`` pointing at a temporary folder, on free ports; never the default
port or the developer's own ``data/devchain/``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from postmortem.devchain.node import free_port, rpc_ready, stop_pid

REPO = Path(__file__).resolve().parent.parent
POSTMORTEM = Path(sys.executable).parent / "postmortem"


def _pm(devchain_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """A real `postmortem` process (used for `start`: the command exits, its anvil runs on)."""
    env = {**os.environ, "POSTMORTEM_DEVCHAIN_DIR": str(devchain_dir)}
    return subprocess.run([str(POSTMORTEM), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli_in(monkeypatch):
    """`postmortem` in this process (CliRunner) with the devchain folder moved, for the quick
    commands (a process start costs seconds on a loaded machine)."""
    from postmortem.devchain import manager
    from postmortem.cli import _register, cli

    _register()

    def run(devchain_dir: Path, *args: str) -> subprocess.CompletedProcess:
        monkeypatch.setattr(manager, "DEVCHAIN_DIR", devchain_dir)
        r = CliRunner().invoke(cli, list(args))
        if r.exception and not isinstance(r.exception, SystemExit):
            raise r.exception
        return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)

    return run


def _one_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_default_port_keeps_the_folder_devchain_incidents_read(tmp_path):
    from postmortem.devchain import manager
    from postmortem.paths import DEVCHAIN_DIR

    assert manager.directory_for(8545) == manager.directory_for(None) == DEVCHAIN_DIR
    assert manager.directory_for(18545) == DEVCHAIN_DIR / "port-18545"
    # A devchain-* incident reads the manifest in that folder (here a stand-in copy).
    from postmortem.incidents import load_incident

    with pytest.raises(Exception, match=str(tmp_path / "manifest.json")):
        load_incident("devchain-wsteth-capo-2026-03-10", devchain_dir=tmp_path)


def test_start_help_lists_every_scenario_file():
    from postmortem.cli import _register, cli

    _register()
    out = CliRunner().invoke(cli, ["devchain", "start", "--help"], terminal_width=200).output
    names = sorted(p.stem for p in (REPO / "devchain" / "scenarios").glob("*.json"))
    assert len(names) >= 3
    listed = out.split("Scenarios")[1]
    for name in names + ["scale"]:
        assert f"\n  {name} " in listed, (name, listed)


@pytest.mark.chain
def test_two_devchains_do_not_orphan_each_other(tmp_path, cli_in):
    dc = tmp_path / "devchain"
    p1, p2 = free_port(), free_port()
    while p2 == p1:
        p2 = free_port()
    try:
        first = _pm(dc, "devchain", "start", "--scenario", "small", "--port", str(p1))
        assert first.returncode == 0, first.stderr
        m1_path = dc / f"port-{p1}" / "manifest.json"
        m1_bytes = m1_path.read_bytes()
        m1 = json.loads(m1_bytes)
        assert m1["port"] == p1 and m1["rpc_url"].endswith(f":{p1}") and m1["scenario"] == "small"

        second = _pm(dc, "devchain", "start", "--scenario", "small", "--port", str(p2))
        assert second.returncode == 0, second.stderr
        m2 = json.loads((dc / f"port-{p2}" / "manifest.json").read_text())
        assert m2["port"] == p2 and m2["pid"] != m1["pid"]
        # The first one is untouched and still running.
        assert m1_path.read_bytes() == m1_bytes
        assert rpc_ready(m1["rpc_url"]) and rpc_ready(m2["rpc_url"])
        assert not (dc / "manifest.json").exists()  # the default port's folder is not touched

        # A second start on a port a devchain already uses: one sentence, the manifest kept.
        err = _one_error(cli_in(dc, "devchain", "start", "--scenario", "small", "--port", str(p1)))
        assert f"already runs on port {p1}" in err and f"devchain stop --port {p1}" in err
        assert m1_path.read_bytes() == m1_bytes and rpc_ready(m1["rpc_url"])

        # A port another program holds.
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            busy = sock.getsockname()[1]
            err = _one_error(cli_in(dc, "devchain", "start", "--scenario", "small", "--port", str(busy)))
        assert f"port {busy} is already in use" in err and "--port" in err
        assert not (dc / f"port-{busy}").exists()

        # Unknown scenario: one sentence naming every scenario.
        err = _one_error(cli_in(dc, "devchain", "start", "--scenario", "nope", "--port", str(free_port())))
        assert "unknown scenario 'nope'" in err
        for name in ("small", "mixed-v30", "wsteth-capo-2026-03-10", "scale"):
            assert name in err

        status = cli_in(dc, "devchain", "status")
        assert status.returncode == 0, status.stderr
        assert f"port {p1}: running" in status.stdout and f"port {p2}: running" in status.stdout
        listed = json.loads(cli_in(dc, "devchain", "status", "--json").stdout)
        assert sorted((m["port"], m["running"]) for m in listed) == sorted([(p1, True), (p2, True)])

        # `stop` without --port means the default port, where nothing runs here: it says which do.
        err = _one_error(cli_in(dc, "devchain", "stop"))
        assert "no devchain is running on port 8545" in err and str(p1) in err and str(p2) in err

        stopped = cli_in(dc, "devchain", "stop", "--port", str(p1))
        assert stopped.returncode == 0 and f"stopped the devchain on port {p1}" in stopped.stdout
        assert not rpc_ready(m1["rpc_url"])
        assert rpc_ready(m2["rpc_url"])  # the other one runs on
        assert json.loads(m1_path.read_text())["stopped"] is True

        err = _one_error(cli_in(dc, "devchain", "stop", "--port", str(p1)))
        assert "marked stopped" in err and f"devchain stop --port {p2}" in err
        never = free_port()
        err = _one_error(cli_in(dc, "devchain", "stop", "--port", str(never)))
        assert f"no devchain is running on port {never}" in err and "no manifest" in err

        status = cli_in(dc, "devchain", "status").stdout
        assert f"port {p2}: running" in status and f"port {p1}: running" not in status
        assert "1 stopped" in status

        assert cli_in(dc, "devchain", "stop", "--all").returncode == 0
        assert not rpc_ready(m2["rpc_url"])
        assert "no devchain is running" in cli_in(dc, "devchain", "status").stdout
    finally:
        for manifest in dc.glob("*/manifest.json"):
            m = json.loads(manifest.read_text())
            if not m.get("stopped") and rpc_ready(m["rpc_url"]):
                stop_pid(int(m["pid"]))
