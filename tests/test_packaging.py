"""postmortem installs like a real tool: one wheel, one import namespace, its data inside it.

The wheel is built from this checkout (as `pip install .` does), installed into a folder of its own
and run from a folder outside the checkout, so nothing can be found through the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    # Built from the tracked files only, as a fresh clone would be: a build/ or stale module left in
    # this working tree must not reach the wheel.
    src = tmp_path_factory.mktemp("src")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, tracked.decode().split("\0")):
        if (REPO / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO / rel, src / rel)  # follows links (devchain/npm/ -> the root's npm files)
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(dist), str(src)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "warning" not in build.stderr.lower().replace("location 'file", ""), build.stderr[-2000:]
    wheel = next(dist.glob("postmortem-*.whl"))
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)  # a wheel is a zip laid out as site-packages
        names = z.namelist()
    outside = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTMORTEM_")}
    env |= {"PYTHONPATH": str(target), "POSTMORTEM_HOME": str(outside / "home"), "PYTHONSAFEPATH": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        code = "import sys; from postmortem.cli import main; sys.argv[0] = 'postmortem'; main()"
        return subprocess.run([sys.executable, "-c", code, *args], cwd=outside, env=env, capture_output=True,
                              text=True, timeout=120)

    return {"names": names, "target": target, "run": run, "cwd": outside}


def test_the_wheel_is_one_namespace_with_its_data(installed):
    tops = {n.split("/")[0] for n in installed["names"] if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"postmortem"}
    names = set(installed["names"])
    for must in ("postmortem/ingest/pipeline.py", "postmortem/replay/aave_math/generic_logic.py",
                 "postmortem/reports/render_html.py", "postmortem/devchain/manager.py",
                 "postmortem/data/incidents/aave-v3-wsteth-capo-2026-03-10.toml",
                 "postmortem/devchain/scenarios/wsteth-capo-2026-03-10.json",
                 "postmortem/devchain/contracts/CappedRatioAdapter.sol", "postmortem/devchain/solc_compile.cjs",
                 "postmortem/devchain/npm/package.json", "postmortem/devchain/npm/package-lock.json",
                 "postmortem/devchain/npm/.npmrc", "postmortem/devchain/compound/judge.py",
                 "postmortem/devchain/scenarios/compound-lst-misprice.json",
                 "postmortem/devchain/contracts/SteerableVenusOracle.sol"):
        assert must in names, must
    # the installed code is what runs, not the checkout
    probe = subprocess.run([sys.executable, "-c", "import postmortem.ingest.pipeline as p; print(p.__file__)"],
                           cwd=installed["cwd"], env={**os.environ, "PYTHONPATH": str(installed["target"]),
                                                      "PYTHONSAFEPATH": "1"}, capture_output=True, text=True)
    assert probe.stdout.strip().startswith(str(installed["target"])), probe.stdout + probe.stderr


def test_installed_tool_lists_the_catalog_from_anywhere(installed):
    res = installed["run"]("incidents")
    assert res.returncode == 0, res.stderr
    assert "aave-v3-wsteth-capo-2026-03-10" in res.stdout and "devchain-wsteth-capo-2026-03-10" in res.stdout


def test_installed_devchain_lists_scenarios_and_says_how_to_get_anvil(installed):
    res = installed["run"]("devchain", "start", "--help")
    assert res.returncode == 0, res.stderr
    for name in ("wsteth-capo-2026-03-10", "small", "mixed-v30", "wsteth-capo-2026-03-10-mainnet"):
        assert name in res.stdout
    res = installed["run"]("devchain", "start", "--scenario", "small", "--port", "18791")
    assert res.returncode != 0
    err = res.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "postmortem devchain setup" in err and "npm ci" not in err
