"""The protocol boundary: every family is known to every stage, incident files name their
family, and the Compound v2 lineage's catalog entries load (without a node)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from postmortem.errors import PostmortemError
from postmortem.incidents import load_incident
from postmortem.ingest.adapters import INGEST
from postmortem.ingest.compound_events import EVENTS, decode_log
from postmortem.protocols import PROTOCOLS, protocol_family
from postmortem.replay.adapters import REPLAY
from postmortem.reports.adapters import REPORT


def test_every_family_has_an_entry_in_every_stage():
    # Aave v3 is each stage's own entry point; every other family is in the stage's table.
    for name in PROTOCOLS:
        if name == "aave-v3":
            continue
        assert name in INGEST and name in REPLAY and name in REPORT, name
    assert set(INGEST) | {"aave-v3"} == set(PROTOCOLS)


def test_unknown_protocol_is_one_sentence(tmp_path):
    with pytest.raises(PostmortemError, match="unknown protocol 'maker'"):
        protocol_family("maker")
    (tmp_path / "x.toml").write_text('id = "x"\nprotocol = "compound-v2"\nchain_id = 1\nfrom_block = 1\nto_block = 2\n'
                                     '[markets.DAI]\nvtoken = "0x1"\nunderlying = "0x2"\ndecimals = 18\n')
    with pytest.raises(PostmortemError, match="without a comptroller"):
        load_incident("x", directory=tmp_path)
    (tmp_path / "y.toml").write_text('id = "y"\nprotocol = "compound-v2"\nvariant = "compound-3"\nchain_id = 1\n'
                                     'from_block = 1\nto_block = 2\ncomptroller = "0x3"\n'
                                     '[markets.DAI]\nvtoken = "0x1"\nunderlying = "0x2"\ndecimals = 18\n')
    with pytest.raises(PostmortemError, match="unknown compound-v2 variant 'compound-3'"):
        load_incident("y", directory=tmp_path)


def test_aave_incidents_stay_aave():
    inc = load_incident("aave-v3-wsteth-capo-2026-03-10")
    assert inc.protocol == "aave-v3" and inc.comptroller is None and inc.pools


def test_the_compound_catalog_entries():
    dai = load_incident("compound-v2-dai-2020-11-26")
    assert (dai.protocol, dai.variant, dai.chain_id) == ("compound-v2", "compound-2020", 1)
    assert (dai.from_block, dai.to_block) == (11_332_733, 11_335_286)
    assert dai.comptroller == "0x3d9819210a31b4961b30ef54be2aed79b9c9cd3b"
    assert dai.ctokens["DAI"]["vtoken"] == "0x5d3a536e4d6dbd6114cc1ead35777bab948e3643"
    assert dai.true_price["DAI"] == {"model": "constant", "price": "1.00"}
    mw = load_incident("moonwell-cbeth-2026-02-15")
    assert (mw.variant, mw.chain_id, mw.comptroller) == ("moonwell", 8453, "0xfbb21d0380bee3312b33c4353c8936a0f13ef26c")
    # 18:01 UTC on 2026-02-15 in Base's 2-second blocks: (1771178460 - 1686789347) / 2.
    assert mw.window_first_block == (1771178460 - 1686789347) // 2 == 42_194_556
    assert set(mw.ctokens) == {"cbETH", "WETH"} and mw.true_price["cbETH"]["price"] == "2200"


def test_the_devchain_entry_reads_the_worlds_manifest(tmp_path):
    manifest = {
        "chain_id": 31337, "rpc_url": "http://127.0.0.1:18751", "scenario": "compound-lst-misprice",
        "protocol": "compound-v2", "variant": "venus-isolated-pools-4.4.0", "deploy_block": 1,
        "summary": {"deploy_block": 1, "setup_end_block": 40, "start_block": 41, "end_block": 60, "fix_block": 55},
        "addresses": {"comptroller": "0xC0", "oracle": "0x0A", "multicall3": "0x0B",
                      "markets": {"cbETH": {"vtoken": "0xA1", "underlying": "0xB1", "decimals": 18, "vtoken_decimals": 8},
                                  "WETH": {"vtoken": "0xA2", "underlying": "0xB2", "decimals": 18, "vtoken_decimals": 8}},
                      "accounts": {}},
        "true_prices": {"cbETH": 2464 * 10**18},
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    inc = load_incident("devchain-compound-lst-misprice", devchain_dir=tmp_path)
    assert (inc.protocol, inc.variant, inc.comptroller, inc.chain_id) == ("compound-v2", "venus-isolated", "0xc0", 31337)
    assert (inc.from_block, inc.to_block, inc.users_since) == (41, 60, 1)
    assert inc.true_price == {"cbETH": {"model": "constant_raw", "price": str(2464 * 10**18)}}
    assert inc.ctokens["WETH"]["vtoken"] == "0xa2"
    manifest["scenario"] = "small"
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(PostmortemError, match="restart it with `postmortem devchain start --scenario compound-lst-misprice`"):
        load_incident("devchain-compound-lst-misprice", devchain_dir=tmp_path)


def test_incidents_lists_the_new_entries():
    out = subprocess.run([str(Path(sys.executable).parent / "postmortem"), "incidents"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for name in ("compound-v2-dai-2020-11-26", "moonwell-cbeth-2026-02-15", "devchain-compound-lst-misprice"):
        assert name in out.stdout


def test_event_decoding_per_layout():
    # Compound's RepayBorrow: nothing indexed, five words of data.
    ev = next(e for e in EVENTS if e.name == "RepayBorrow")
    payer, borrower = "0x" + "11" * 20, "0x" + "22" * 20
    words = [int(payer, 16), int(borrower, 16), 5, 7, 9]
    data = "0x" + "".join(f"{w:064x}" for w in words)
    d = decode_log([ev.topic0], data)
    assert d == {"event": "RepayBorrow", "counterparty": payer, "account": borrower, "amount": 5,
                 "account_borrows": 7, "total_borrows": 9}
    # Venus isolated pools index payer and borrower: same topic0, three words of data.
    topics = [ev.topic0, "0x" + "0" * 24 + payer[2:], "0x" + "0" * 24 + borrower[2:]]
    d2 = decode_log(topics, "0x" + "".join(f"{w:064x}" for w in (5, 7, 9)))
    assert d2 == d
    # A shape no layout fits is not decoded (never guessed).
    assert decode_log([ev.topic0], "0x" + "00" * 64) is None
    assert decode_log(["0x" + "ab" * 32], "0x") is None


def test_the_protocol_of_an_id_outside_the_catalog_is_aave(tmp_path):
    # Commands keep their own error for an unknown id (e.g. "no warehouse at ..."), so the dispatch
    # never raises first.
    from postmortem.incidents import incident_protocol

    assert incident_protocol("no-such-incident") == "aave-v3"
    assert incident_protocol("moonwell-cbeth-2026-02-15") == "compound-v2"
    assert incident_protocol("aave-v3-wsteth-capo-2026-03-10") == "aave-v3"
