"""Which devchain a ``devchain-*`` catalog entry reads: the default port's manifest when it runs
the entry's scenario, else the one devchain on another port that does; never a guess."""

from __future__ import annotations

import json

import pytest

from postmortem.errors import PostmortemError
from postmortem.incidents import _devchain_manifest_for


def _write(folder, scenario):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps({"scenario": scenario, "rpc_url": f"http://x/{folder.name}"}))


def test_the_default_port_first(tmp_path):
    _write(tmp_path, "a")
    _write(tmp_path / "port-18546", "a")
    assert _devchain_manifest_for({"scenario": "a"}, tmp_path)["rpc_url"] == f"http://x/{tmp_path.name}"


def test_another_port_running_the_scenario(tmp_path):
    _write(tmp_path, "wsteth-capo-2026-03-10")
    _write(tmp_path / "port-18546", "compound-lst-misprice")
    m = _devchain_manifest_for({"scenario": "compound-lst-misprice"}, tmp_path)
    assert m["rpc_url"] == "http://x/port-18546"


def test_none_or_several_is_one_sentence_with_the_fix(tmp_path):
    with pytest.raises(PostmortemError, match=r"no devchain runs scenario 'b'.*devchain start --scenario b"):
        _devchain_manifest_for({"scenario": "b"}, tmp_path)
    _write(tmp_path, "a")
    with pytest.raises(PostmortemError, match=r"runs scenario .a., not .b.; restart it with .postmortem devchain start --scenario b."):
        _devchain_manifest_for({"scenario": "b"}, tmp_path)
    _write(tmp_path / "port-1", "b")
    _write(tmp_path / "port-2", "b")
    with pytest.raises(PostmortemError, match=r"2 devchains run scenario 'b'.*stop all but one"):
        _devchain_manifest_for({"scenario": "b"}, tmp_path)
