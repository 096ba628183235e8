"""The scenario engine: a declarative scenario (JSON data) turned into transactions.

A scenario has four parts:

``world``     overrides of ``devchain.deploy.DEFAULT_WORLD`` (assets, feeds, cap parameters, markets)
``accounts``  borrowers, lenders and controls; each with positions per market (supply, eMode,
              borrows sized by a target health factor or an amount) and a ``role``
``liquidators`` labels of liquidator accounts (funded and approved on every market)
``timeline``  blocks in order; each block has a ``timestamp`` (or ``advance`` seconds) and a
              list of ``txs`` mined together in that order (anvil ``--order fifo``)

Time is part of the scenario, never the wall clock: the chain starts at ``genesis_timestamp``
(default: one day before the first timeline block), every set-up block is one second after the
one before, and timeline blocks carry their own timestamps. So the same scenario and parameters
give the same blocks, transactions, logs and state, to the wei, on any machine at any hour.

Transactions (``do``): ``set_cap_parameters``, ``set_feed``, ``set_steth_rate``, ``liquidate``,
``supply``, ``withdraw``, ``borrow``, ``repay``, ``transfer_a_token``, ``set_emode``.

Running a scenario writes a ground-truth file: every liquidation with what was targeted and what
happened (from its ``LiquidationCall`` log), whether it was wrongly eligible by construction, and
every control account with what it claims to be.
"""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_utils import keccak

from postmortem.devchain.chain import Chain, ScenarioTxFailed, address_for
from postmortem.devchain.deploy import ROLES, deploy_world, merge_world, units
from postmortem.errors import PostmortemError

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
MAX_UINT = 2**256 - 1
LIQUIDATION_CALL_TOPIC = "0x" + keccak(
    text="LiquidationCall(address,address,address,uint256,uint256,address,bool)"
).hex()

DEFAULT_GENESIS_TIMESTAMP = 1_773_056_771  # 2026-03-09 11:46:11 UTC, a day before the incident

# Roles whose liquidations are wrong by construction (healthy at the true price).
WRONGLY_ELIGIBLE_ROLES = {"victim"}


def available_scenarios() -> list[str]:
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))
    return names + ["scale"]


def genesis_timestamp(scenario: dict) -> int:
    """The scenario's fixed start time: ``genesis_timestamp``, or a day before its first
    timestamped timeline block, or (no timestamps at all) a fixed date."""
    if "genesis_timestamp" in scenario:
        return int(scenario["genesis_timestamp"])
    stamps = [int(b["timestamp"]) for b in scenario.get("timeline", []) if "timestamp" in b]
    return min(stamps) - 86_400 if stamps else DEFAULT_GENESIS_TIMESTAMP


def load_scenario(name: str, **params: Any) -> dict:
    """Load a scenario by name (``scale`` is generated; ``borrowers=N`` sets its size)."""
    if name == "scale":
        from postmortem.devchain.scale import scale_scenario

        return scale_scenario(**params)
    path = SCENARIO_DIR / f"{name}.json"
    if not path.exists():
        raise PostmortemError(
            f"unknown scenario {name!r}; choose one of: {', '.join(available_scenarios())}"
        )
    sc = json.loads(path.read_text())
    if sc.get("runner") == "twin":  # the mainnet twin takes history_blocks=N
        from postmortem.devchain.twin import twin_scenario

        return twin_scenario(sc, **params)
    return sc


class ScenarioRunner:
    def __init__(self, chain: Chain, scenario: dict, *, progress: bool = False):
        self.chain = chain
        self.sc = scenario
        self.world = merge_world(scenario.get("world"))
        self.progress = progress
        self.book: dict = {}
        self.addr: dict[str, str] = {}
        self.records: list[dict] = []
        self.liquidations: list[dict] = []

    # -- helpers -------------------------------------------------------------------------
    def a(self, label: str) -> str:
        if label not in self.addr:
            self.addr[label] = address_for(label)
        return self.addr[label]

    def token(self, sym: str):
        name = "WstEthLike" if sym == "wstETH" else "TestERC20"
        return self.chain.contract(name, self.book["tokens"][sym]["address"])

    def dec(self, sym: str) -> int:
        return self.book["tokens"][sym]["decimals"]

    def is_v30(self, market: str) -> bool:
        return self.book["markets"][market].get("revision") == "3.0"

    def pool(self, market: str):
        name = "V30Pool" if self.is_v30(market) else "PoolInstance"
        return self.chain.contract(name, self.book["markets"][market]["pool"])

    def set_emode_ltv(self, market: str, ltv: int, label: str) -> None:
        mk = self.book["markets"][market]
        if self.is_v30(market):
            from postmortem.devchain.deploy_v30 import set_emode_category

            set_emode_category(self.chain, mk, ltv, ROLES["pool_admin"], label)
            return
        e = mk["emode"]
        conf = self.chain.contract("PoolConfiguratorInstance", mk["pool_configurator"])
        self.chain.send(conf.functions.setEModeCategory(e["id"], ltv, e["lt"], e["bonus"], e["label"]),
                        ROLES["pool_admin"], label=label)

    def amount(self, sym: str, value: str | int) -> int:
        if value == "max":
            return MAX_UINT
        return units(value, self.dec(sym))

    def log(self, msg: str) -> None:
        if self.progress:
            print(msg, flush=True)

    # -- phases --------------------------------------------------------------------------
    def run(self) -> dict:
        t0 = time.monotonic()
        c = self.chain
        # Deterministic time: every block without a timeline timestamp is one second after the
        # previous one, never the wall clock (interest accrues over set-up blocks).
        c.rpc("anvil_setBlockTimestampInterval", [1])
        c.mine(genesis_timestamp(self.sc))
        self.log("deploying Aave v3.6 markets ...")
        self.book = deploy_world(c, self.world)
        deploy_block = c.block_number
        self._setup_accounts()
        setup_block = c.block_number
        self.log(f"running the timeline ({len(self.sc.get('timeline', []))} blocks) ...")
        for block in self.sc.get("timeline", []):
            self._run_block(block)
        summary = {
            "deploy_block": deploy_block,
            "setup_end_block": setup_block,
            "end_block": c.block_number,
            "liquidations": len(self.liquidations),
            "liquidations_wrongly_eligible": sum(1 for x in self.liquidations if x["wrongly_eligible"]),
            "borrowers_liquidated": len({(x["market"], x["user"]) for x in self.liquidations}),
            "seconds": round(time.monotonic() - t0, 2),
        }
        return {"book": self.book, "summary": summary, "ground_truth": self.ground_truth()}

    def _setup_accounts(self) -> None:
        c, sc = self.chain, self.sc
        markets = self.book["markets"]
        for label in sc.get("liquidators", []):
            addr = self.a(label)
            c.fund(addr)
            for sym in self.book["tokens"]:
                c.send(self.token(sym).functions.mint(addr, 10**12 * 10 ** self.dec(sym)), addr, label="mint")
                for m in markets:
                    c.send(self.token(sym).functions.approve(markets[m]["pool"], MAX_UINT), addr, label="approve")
        # Borrowing close to the liquidation threshold: the governance LTV is raised to LT - 1bp
        # during set-up (on mainnet such positions got there through prices and interest).
        for m, mk in markets.items():
            self.set_emode_ltv(m, mk["emode"]["lt"] - 1, "raise eMode LTV for set-up")
        accounts = sc.get("accounts", [])
        self.log(f"setting up {len(accounts)} accounts ...")
        batch = int(sc.get("setup_batch", 0))
        if batch:
            # Explicitly sized accounts can be set up many to a block (the scale scenario). Lenders
            # go first, on their own, so borrowers find liquidity; the others are independent.
            lenders = [a for a in accounts if a.get("role") == "lender"]
            for acct in lenders:
                self._setup_account(acct)
            others = [a for a in accounts if a.get("role") != "lender"]
            for i in range(0, len(others), batch):
                for acct in others[i:i + batch]:
                    c.fund(self.a(acct["label"]), 100)
                c.begin_batch(independent_senders=True)
                for acct in others[i:i + batch]:
                    self._setup_account(acct)
                for r in c.mine_batch():
                    if r.status != 1:
                        raise ScenarioTxFailed(f"set-up transaction reverted in block {r.blockNumber}")
                if self.progress and (i // batch) % 10 == 0:
                    self.log(f"  {min(i + batch, len(others))}/{len(others)} accounts")
        else:
            for acct in accounts:
                self._setup_account(acct)
        for m, mk in markets.items():
            self.set_emode_ltv(m, mk["emode"]["ltv"], "restore eMode LTV")

    def _setup_account(self, acct: dict) -> None:
        c = self.chain
        user = self.a(acct["label"])
        if not c._batching:
            c.fund(user, 100)
        for pos in acct["positions"]:
            market = pos["market"]
            pool = self.pool(market)
            for sym, amt in pos.get("supply", {}).items():
                raw = self.amount(sym, amt)
                c.send(self.token(sym).functions.mint(user, raw), user, label="mint")
                c.send(self.token(sym).functions.approve(pool.address, MAX_UINT), user, label="approve")
                c.send(pool.functions.supply(self.book["tokens"][sym]["address"], raw, user, 0), user,
                       label=f"{acct['label']} supply {sym}")
            if pos.get("emode"):
                c.send(pool.functions.setUserEMode(pos["emode"]), user, label=f"{acct['label']} setUserEMode")
            for sym, spec in pos.get("borrow", {}).items():
                raw = self._borrow_amount(market, user, sym, spec)
                c.send(pool.functions.borrow(self.book["tokens"][sym]["address"], raw, 2, 0, user), user,
                       label=f"{acct['label']} borrow {sym}")
                # Borrowers keep an allowance so scenario repays work.
                c.send(self.token(sym).functions.approve(pool.address, MAX_UINT), user, label="approve")

    def _borrow_amount(self, market: str, user: str, sym: str, spec: Any) -> int:
        if not isinstance(spec, dict):
            return self.amount(sym, spec)
        pool = self.pool(market)
        coll_base, debt_base, _avail, lt_bps, _ltv, _hf = pool.functions.getUserAccountData(user).call()
        target = Decimal(str(spec["target_hf"]))
        oracle = self.chain.contract("AaveOracle", self.book["markets"][market]["oracle"])
        price = oracle.functions.getAssetPrice(self.book["tokens"][sym]["address"]).call()
        debt_base_target = Decimal(coll_base) * lt_bps / 10_000 / target - debt_base
        return int(debt_base_target * (10 ** self.dec(sym)) / price)

    def _run_block(self, block: dict) -> None:
        c = self.chain
        if "advance" in block:
            ts = c.w3.eth.get_block("latest").timestamp + int(block["advance"])
        else:
            ts = int(block["timestamp"])
        latest = c.w3.eth.get_block("latest").timestamp
        if ts <= latest:
            raise PostmortemError(
                f"scenario {self.sc.get('name', '')!r}: a timeline block at timestamp {ts} does not come after the "
                f"chain's latest block (timestamp {latest}); give the timeline increasing timestamps and leave "
                "one second per set-up block between genesis_timestamp and the first timeline block"
            )
        txs = block.get("txs", [])
        if not txs:
            c.mine(ts)
            return
        c.begin_batch()
        # An action may queue helper transactions (mint, approve) before its main one; the
        # main transaction is the last one it queued.
        main_index: list[int] = []
        for tx in txs:
            self._queue(tx)
            main_index.append(len(c._pending) - 1)
        all_receipts = c.mine_batch(ts)
        for tx, receipt in zip(txs, (all_receipts[i] for i in main_index)):
            rec = {
                "do": tx["do"], "block": receipt.blockNumber, "transaction_index": receipt.transactionIndex,
                "transaction_hash": receipt.transactionHash.hex() if isinstance(receipt.transactionHash, bytes)
                else receipt.transactionHash, "status": receipt.status, "timestamp": ts,
                "ref": tx.get("ref"),
            }
            if not rec["transaction_hash"].startswith("0x"):
                rec["transaction_hash"] = "0x" + rec["transaction_hash"]
            self.records.append(rec)
            if receipt.status != 1:
                raise ScenarioTxFailed(
                    f"scenario tx {tx['do']} ({tx.get('user', '')}) reverted in block {receipt.blockNumber}: "
                    f"{self._revert_reason(receipt)}"
                )
            if tx["do"] == "liquidate":
                self._record_liquidation(tx, receipt, rec)

    def _revert_reason(self, receipt) -> str:
        tx = self.chain.w3.eth.get_transaction(receipt.transactionHash)
        try:
            self.chain.w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                                   receipt.blockNumber - 1)
        except Exception as exc:  # noqa: BLE001 - decoding whatever the node says
            return self.chain.explain_revert(exc)
        return "unknown (succeeds when replayed alone: depends on earlier transactions in its block)"

    def _queue(self, tx: dict) -> None:
        c, do = self.chain, tx["do"]
        tokens = self.book["tokens"]
        if do == "set_cap_parameters":
            adapter = c.contract("CappedRatioAdapter", self.book["feeds"]["wsteth_capo"])
            c.send(adapter.functions.setCapParameters(
                units(tx["snapshot_ratio"], 18), int(tx["snapshot_timestamp"]), int(tx["max_yearly_growth_bps"])),
                ROLES["risk_admin"], label=do)
        elif do == "set_feed":
            feed = c.contract("SettableAggregator", self.book["feeds"][tx["feed"]])
            c.send(feed.functions.setAnswer(units(tx["answer"], 8)), ROLES["feed_owner"], label=do)
        elif do == "set_steth_rate":
            st = c.contract("StEthLike", self.book["steth"])
            c.send(st.functions.setShareRate(units(tx["rate"], 18)), ROLES["deployer"], label=do)
        elif do == "liquidate":
            pool = self.pool(tx["market"])
            c.send(pool.functions.liquidationCall(
                tokens[tx["collateral"]]["address"], tokens[tx["debt"]]["address"], self.a(tx["user"]),
                self.amount(tx["debt"], tx["debt_to_cover"]), bool(tx.get("receive_a_token", False))),
                self.a(tx["liquidator"]), label=do)
        elif do in ("supply", "withdraw", "borrow", "repay"):
            pool, user, sym = self.pool(tx["market"]), self.a(tx["user"]), tx["asset"]
            asset, amt = tokens[sym]["address"], self.amount(sym, tx["amount"])
            if do == "supply":
                # Mint and approve outside the batch's ordering concerns: they touch only the user.
                c.send(self.token(sym).functions.mint(user, amt), user, label="mint")
                c.send(self.token(sym).functions.approve(pool.address, MAX_UINT), user, label="approve")
                c.send(pool.functions.supply(asset, amt, user, 0), user, label=do)
            elif do == "withdraw":
                c.send(pool.functions.withdraw(asset, amt, user), user, label=do)
            elif do == "borrow":
                c.send(pool.functions.borrow(asset, amt, 2, 0, user), user, label=do)
            else:
                c.send(self.token(sym).functions.mint(user, amt if amt != MAX_UINT else 10**30), user, label="mint")
                c.send(pool.functions.repay(asset, amt, 2, user), user, label=do)
        elif do == "transfer_a_token":
            rd = self.book["markets"][tx["market"]]["reserves"][tx["asset"]]
            at = c.contract("V30AToken" if self.is_v30(tx["market"]) else "ATokenInstance", rd["a_token"])
            c.send(at.functions.transfer(self.a(tx["to"]), self.amount(tx["asset"], tx["amount"])),
                   self.a(tx["from"]), label=do)
        elif do == "set_emode":
            c.send(self.pool(tx["market"]).functions.setUserEMode(int(tx["category"])), self.a(tx["user"]),
                   label=do)
        else:
            raise PostmortemError(f"unknown scenario transaction {do!r}")

    def _record_liquidation(self, tx: dict, receipt, rec: dict) -> None:
        pool_addr = self.book["markets"][tx["market"]]["pool"].lower()
        logs = [lg for lg in receipt.logs
                if lg.address.lower() == pool_addr and "0x" + lg.topics[0].hex().removeprefix("0x") == LIQUIDATION_CALL_TOPIC]
        if len(logs) != 1:
            raise ScenarioTxFailed(f"liquidation in block {receipt.blockNumber} emitted {len(logs)} LiquidationCall logs")
        lg = logs[0]
        data = bytes(lg.data)
        debt_to_cover = int.from_bytes(data[0:32], "big")
        collateral = int.from_bytes(data[32:64], "big")
        role = self._role(tx["user"])
        self.liquidations.append({
            **rec,
            "log_index": lg.logIndex,
            "market": tx["market"],
            "user_label": tx["user"],
            "user": self.a(tx["user"]).lower(),
            "liquidator": self.a(tx["liquidator"]).lower(),
            "collateral_asset": tx["collateral"],
            "debt_asset": tx["debt"],
            "receive_a_token": bool(tx.get("receive_a_token", False)),
            "targeted_debt_to_cover": tx["debt_to_cover"],
            "debt_to_cover": str(debt_to_cover),
            "liquidated_collateral_amount": str(collateral),
            "role": role,
            "wrongly_eligible": role in WRONGLY_ELIGIBLE_ROLES,
        })

    def _role(self, label: str) -> str:
        for acct in self.sc.get("accounts", []):
            if acct["label"] == label:
                return acct.get("role", "borrower")
        return "unknown"

    def ground_truth(self) -> dict:
        controls = []
        for acct in self.sc.get("accounts", []):
            if acct.get("role") in ("healthy", "rightly_liquidated", "eligible_not_liquidated"):
                for pos in acct["positions"]:
                    controls.append({
                        "label": acct["label"], "user": self.a(acct["label"]).lower(), "market": pos["market"],
                        "role": acct["role"], "emode": pos.get("emode", 0), "check_block": acct.get("check_block"),
                    })
        return {"liquidations": self.liquidations, "controls": controls, "transactions": self.records}
