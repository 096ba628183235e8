"""The mainnet twin's ``history_blocks=N`` (benchmarks): N blocks one second apart of churn of a
token no market lists, ending where the twin without history starts, so the deployment and the
incident's blocks keep their numbers and times; refused in one sentence when malformed."""

from __future__ import annotations

import pytest
from eth_utils import keccak

from postmortem.devchain.chain import Artifacts, Chain
from postmortem.devchain.node import start_anvil
from postmortem.devchain.scenario import load_scenario
from postmortem.devchain.twin import HISTORY_TRANSFERS_PER_BLOCK, mine_history
from postmortem.errors import PostmortemError

TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
SCENARIO = "wsteth-capo-2026-03-10-mainnet"


def test_history_moves_the_genesis_not_the_window():
    base = load_scenario(SCENARIO)
    longer = load_scenario(SCENARIO, history_blocks=100_000)
    number = base["anvil_args"][base["anvil_args"].index("--number") + 1]
    assert "history_blocks" not in base  # N = 0 is the twin as it was
    assert longer["anvil_args"][longer["anvil_args"].index("--number") + 1] == str(int(number) - 100_000)
    assert longer["genesis_timestamp"] == base["genesis_timestamp"] - 100_000
    assert longer["range"] == base["range"] and longer["timeline"] == base["timeline"]


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True, 10**9])
def test_bad_history_is_one_sentence(bad):
    with pytest.raises(PostmortemError, match="history_blocks must be a whole number"):
        load_scenario(SCENARIO, history_blocks=bad)


def test_unknown_twin_parameter_is_refused():
    with pytest.raises(PostmortemError, match="its only parameter is history_blocks"):
        load_scenario(SCENARIO, borrowers=10)


@pytest.mark.chain
def test_mine_history_blocks_times_and_churn(tmp_path):
    node = start_anvil(timestamp=1_700_000_000, extra_args=["--chain-id", "1", "--number", "5000"],
                       log_path=tmp_path / "anvil.log")
    try:
        chain = Chain(node.url, Artifacts.load())
        chain.rpc("anvil_setBlockTimestampInterval", [1])
        made = mine_history(chain, 250, spacing=50)
        head = chain.w3.eth.get_block("latest")
        assert (head.number, head.timestamp) == (5250, 1_700_000_250)
        for b in (5001, 5002, 5100, 5249):
            assert chain.w3.eth.get_block(b).timestamp == 1_700_000_000 + b - 5000
        logs = chain.rpc("eth_getLogs", [{"fromBlock": hex(5000), "toBlock": hex(5250), "topics": [TRANSFER]}])
        transfers = [lg for lg in logs if lg["topics"][1] != "0x" + "00" * 32]  # not the mint
        assert made["history_transfers"] == len(transfers) > 0
        assert made["history_transfers"] % HISTORY_TRANSFERS_PER_BLOCK == 0
        assert {lg["address"].lower() for lg in logs} == {made["history_token"].lower()}
        blocks = {int(lg["blockNumber"], 16) for lg in transfers}
        assert len(blocks) == made["history_transfers"] // HISTORY_TRANSFERS_PER_BLOCK  # sparse: a few per block
    finally:
        node.stop()
