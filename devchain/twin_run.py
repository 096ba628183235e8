"""Run the mainnet twin scenario (``"runner": "twin"``): contracts at mainnet addresses
(``devchain.twin``), then the accounts, then the incident's blocks at their mainnet numbers and
timestamps.

Accounts: the 35 real borrowers and the real liquidators (impersonated, funded with
``anvil_setBalance``), a lender, and generated users ("fillers") so the markets look lived in:
wstETH suppliers and borrowers in Core and Prime with a spread of health factors, and users of
the other reserves. Set-up is mined many accounts to a block (``Chain.begin_batch``). Blocks
before the incident range are set-up blocks one second apart; from ``from_block`` on, every block
is 12 s after the previous one, so each block of the window carries its mainnet timestamp.
"""

from __future__ import annotations

import time
from decimal import Decimal

from eth_utils import keccak, to_checksum_address

from postmortem.devchain.chain import Chain, ScenarioTxFailed, address_for
from postmortem.devchain.deploy import ROLES, units
from postmortem.devchain.scenario import LIQUIDATION_CALL_TOPIC, MAX_UINT
from postmortem.devchain.twin import deploy_twin, mine_empty, mine_history
from postmortem.errors import PostmortemError

FINALITY_MARGIN = 70  # anvil's `finalized` is 64 blocks behind `latest`


def _h(label: str, n: int) -> int:
    """A deterministic pseudo-random integer in [0, n) for a label."""
    return int.from_bytes(keccak(text=label)[:8], "big") % n


class TwinRunner:
    def __init__(self, chain: Chain, scenario: dict, *, progress: bool = False):
        self.chain = chain
        self.sc = scenario
        self.progress = progress
        self.book: dict = {}
        self.liquidations: list[dict] = []
        self.records: list[dict] = []
        self.fillers: list[dict] = []

    def log(self, msg: str) -> None:
        if self.progress:
            print(msg, flush=True)

    # -- prices as the protocol sees them during set-up (integers, 8 decimals) ----------------
    def price(self, market: str, sym: str) -> int:
        oracle = self.chain.contract("AaveOracle", self.book["markets"][market]["oracle"])
        key = (market, sym)
        cache = self.__dict__.setdefault("_prices", {})
        if key not in cache:
            cache[key] = oracle.functions.getAssetPrice(self.book["tokens"][sym]["address"]).call()
        return cache[key]

    def token(self, sym: str):
        return self.chain.contract("WstEthLike" if sym == "wstETH" else "TestERC20", self.book["tokens"][sym]["address"])

    def pool(self, market: str):
        return self.chain.contract("PoolInstance", self.book["markets"][market]["pool"])

    def conf(self, market: str):
        return self.chain.contract("PoolConfiguratorInstance", self.book["markets"][market]["pool_configurator"])

    # -- phases ----------------------------------------------------------------------------------
    def run(self) -> dict:
        t0 = time.monotonic()
        c, rng = self.chain, self.sc["range"]
        c.rpc("anvil_setBlockTimestampInterval", [1])
        genesis = c.w3.eth.get_block("latest")
        history = {}
        if self.sc.get("history_blocks"):
            n = int(self.sc["history_blocks"])
            self.log(f"mining {n:,} blocks of unrelated token churn before the deployment ...")
            history = mine_history(c, n)
        # The deployment starts from the same block and time whatever the history's length.
        base = c.w3.eth.get_block("latest") if history else genesis
        genesis_ts = int(base.timestamp)
        if history and (int(base.number), genesis_ts) != (int(genesis.number) + history["history_blocks"],
                                                          int(genesis.timestamp) + history["history_blocks"]):
            raise PostmortemError(
                f"the twin's history ended at block {base.number} time {base.timestamp}, not one block and one "
                "second apart from the genesis; the deployment would not match the twin without history"
            )
        self.log("deploying Aave v3.6 Core and Prime at their mainnet addresses ...")
        self.book = deploy_twin(c, self.sc, genesis_ts)
        deploy_block = c.block_number
        self._setup_accounts()
        setup_block = c.block_number
        if setup_block >= rng["from_block"]:
            raise PostmortemError(
                f"the twin's set-up reached block {setup_block}, past the incident range's start {rng['from_block']}; "
                "lower genesis_number in the scenario"
            )
        self.log("mining the incident range at mainnet block numbers and timestamps ...")
        self._run_range()
        summary = {
            "genesis_block": int(genesis.number), "deploy_block": deploy_block, "setup_end_block": setup_block, "end_block": c.block_number,
            "liquidations": len(self.liquidations),
            "liquidations_wrongly_eligible": sum(1 for x in self.liquidations if x["wrongly_eligible"]),
            "borrowers_liquidated": len({(x["market"], x["user"]) for x in self.liquidations}),
            "users": len({f["user"] for f in self.fillers} | {v["user"].lower() for v in self.sc["victims"]}),
            "seconds": round(time.monotonic() - t0, 2),
            **history,
        }
        return {"book": self.book, "summary": summary,
                "ground_truth": {"liquidations": self.liquidations, "controls": [], "transactions": self.records,
                                 "fillers": self.fillers}}

    def _block_ts(self, number: int) -> int:
        rng = self.sc["range"]
        return rng["update_timestamp"] + rng["block_seconds"] * (number - rng["update_block"])

    def _mine_batch(self, label: str) -> list:
        receipts = self.chain.mine_batch()
        for r in receipts:
            if r.status != 1:
                tx = self.chain.w3.eth.get_transaction(r.transactionHash)
                raise ScenarioTxFailed(
                    f"twin set-up ({label}) reverted in block {r.blockNumber}: {tx['from']} calling {tx['to']} "
                    f"(selector {bytes(tx['input'])[:4].hex()})")
        return receipts

    def _setup_accounts(self) -> None:
        c, sc = self.chain, self.sc
        markets = self.book["markets"]
        lender = address_for("twin-lender")
        c.fund(lender, 100)
        for addr in [lender] + sc["liquidators"]:
            c.fund(addr, 100)
        # The lender brings liquidity; liquidators hold what they repay. One block.
        c.begin_batch(independent_senders=True)
        for m in markets:
            for sym in markets[m]["reserves"]:
                dec = self.book["tokens"][sym]["decimals"]
                amount = (10**9 if dec <= 8 and sym != "WBTC" else 10**6 if sym != "WBTC" else 20_000) * 10**dec
                if sym in ("WETH", "cbETH", "osETH", "rETH", "weETH", "wstETH"):
                    amount = 400_000 * 10**dec
                c.send(self.token(sym).functions.mint(lender, amount), lender, label="mint")
                c.send(self.token(sym).functions.approve(markets[m]["pool"], MAX_UINT), lender, label="approve")
                c.send(self.pool(m).functions.supply(self.book["tokens"][sym]["address"], amount, lender, 0), lender,
                       label=f"lender supply {sym}")
        for liq in sc["liquidators"]:
            for sym in ("WETH", "cbETH", "osETH"):
                c.send(self.token(sym).functions.mint(liq, 10**24), liq, label="mint")
                for m in markets:
                    c.send(self.token(sym).functions.approve(markets[m]["pool"], MAX_UINT), liq, label="approve")
        self._mine_batch("lender and liquidators")
        # Borrowing close to the liquidation threshold: LTVs are raised to LT - 1bp during set-up
        # (on mainnet such positions got there through prices and interest) and restored after.
        self._set_ltvs(raised=True)
        self.log(f"setting up {len(sc['victims'])} borrower positions and the other users ...")
        jobs = [self._victim_job(v) for v in sc["victims"]] + self._filler_jobs()
        for i in range(0, len(jobs), 150):
            part = jobs[i:i + 150]
            for user, _ in part:
                c.fund(user, 10)
            c.begin_batch(independent_senders=True)
            for user, steps in part:
                for step in steps:
                    self._send_step(user, step)
            self._mine_batch("accounts")
            if self.progress and (i // 150) % 3 == 0:
                self.log(f"  {min(i + 150, len(jobs))}/{len(jobs)} accounts")
        self._set_ltvs(raised=False)
        for m, mk in markets.items():
            for sym in mk["frozen"]:
                c.send(self.conf(m).functions.setReserveFreeze(self.book["tokens"][sym]["address"], True),
                       ROLES["pool_admin"], label=f"setReserveFreeze({sym})")

    def _set_ltvs(self, raised: bool) -> None:
        c, admin = self.chain, ROLES["pool_admin"]
        for m, mk in self.book["markets"].items():
            for e in mk["emodes"]:
                c.send(self.conf(m).functions.setEModeCategory(e["id"], e["lt"] - 1 if raised else e["ltv"], e["lt"],
                                                              e["bonus"], e["label"]), admin, label="eMode LTV")
            spec = next(r for r in self.sc["markets"][m]["reserves"] if r[0] == "wstETH")
            c.send(self.conf(m).functions.configureReserveAsCollateral(
                self.book["tokens"]["wstETH"]["address"], spec[3] - 1 if raised else spec[2], spec[3], spec[4]),
                admin, label="wstETH LTV")

    def _send_step(self, user: str, step: tuple) -> None:
        c, kind = self.chain, step[0]
        if kind == "supply":
            _, m, sym, amount = step
            c.send(self.token(sym).functions.mint(user, amount), user, label="mint")
            c.send(self.token(sym).functions.approve(self.book["markets"][m]["pool"], MAX_UINT), user, label="approve")
            c.send(self.pool(m).functions.supply(self.book["tokens"][sym]["address"], amount, user, 0), user,
                   label=f"supply {sym}")
        elif kind == "emode":
            c.send(self.pool(step[1]).functions.setUserEMode(step[2]), user, label="setUserEMode")
        elif kind == "borrow":
            _, m, sym, amount = step
            c.send(self.pool(m).functions.borrow(self.book["tokens"][sym]["address"], amount, 2, 0, user), user,
                   label=f"borrow {sym}")

    def _victim_job(self, v: dict) -> tuple[str, list]:
        user = to_checksum_address(v["user"])
        ((sym, amount),) = v["borrow"].items()
        steps = [("supply", v["market"], "wstETH", units(v["supply_wsteth"], 18))]
        if v["emode"]:
            steps.append(("emode", v["market"], v["emode"]))
        steps.append(("borrow", v["market"], sym, units(amount, self.book["tokens"][sym]["decimals"])))
        return user, steps

    def _borrow_for(self, market: str, coll: str, coll_amount: int, lt_bps: int, debt: str, hf: Decimal) -> int:
        """Debt (token units) giving health factor ``hf`` at set-up prices."""
        t = self.book["tokens"]
        coll_base = coll_amount * self.price(market, coll) // 10 ** t[coll]["decimals"]
        debt_base = Decimal(coll_base) * lt_bps / 10_000 / hf
        return int(debt_base * 10 ** t[debt]["decimals"] / self.price(market, debt))

    def _filler_jobs(self) -> list[tuple[str, list]]:
        """Generated users: wstETH suppliers and borrowers (health factors spread from just above
        the capped price's reach to very safe), and users of the other reserves."""
        f = self.sc["fillers"]
        jobs = []
        reserve_lt = {m: {r[0]: r[3] for r in self.sc["markets"][m]["reserves"]} for m in self.book["markets"]}
        emode_lt = {m: mk["emodes"][0]["lt"] for m, mk in self.book["markets"].items()}
        for market, count in (("core", f["core_wsteth"]), ("prime", f["prime_wsteth"])):
            for i in range(count):
                label = f"{f['seed']}-{market}-wsteth-{i}"
                user = address_for(label)
                amount = (1 + _h(label, 4000)) * 10**17  # 0.1 .. 400 wstETH
                steps = [("supply", market, "wstETH", amount)]
                kind = i % 4
                if kind in (1, 2):  # eMode WETH borrowers, HF 1.01 .. 2.5
                    hf = Decimal("1.01") + Decimal(_h(label + "hf", 1490)) / 1000
                    steps += [("emode", market, 1),
                              ("borrow", market, "WETH", self._borrow_for(market, "wstETH", amount, emode_lt[market], "WETH", hf))]
                elif kind == 3:  # stablecoin borrowers outside eMode, HF 1.1 .. 4
                    hf = Decimal("1.1") + Decimal(_h(label + "hf", 2900)) / 1000
                    steps += [("borrow", market, "USDC",
                               self._borrow_for(market, "wstETH", amount, reserve_lt[market]["wstETH"], "USDC", hf))]
                else:
                    hf = None
                jobs.append((user, steps))
                self.fillers.append({"label": label, "user": user.lower(), "market": market,
                                     "target_hf": str(hf) if hf else None})
        others = [("WBTC", 8, "USDC"), ("USDC", 6, "WETH"), ("DAI", 18, "USDT"), ("cbETH", 18, "WETH"),
                  ("rETH", 18, "WETH"), ("weETH", 18, "WETH"), ("LINK", 18, "GHO"), ("AAVE", 18, "USDC"),
                  ("USDT", 6, "DAI"), ("osETH", 18, "WETH")]
        for i in range(f["core_other"]):
            coll, dec, debt = others[i % len(others)]
            label = f"{f['seed']}-core-{coll}-{i}"
            user = address_for(label)
            usd = 1_000 + _h(label, 200_000)  # USD 1,000 .. 201,000 of collateral
            amount = usd * 10**8 * 10**dec // self.price("core", coll)
            steps = [("supply", "core", coll, amount)]
            hf = None
            if i % 3:
                hf = Decimal("1.05") + Decimal(_h(label + "hf", 3000)) / 1000
                steps.append(("borrow", "core", debt, self._borrow_for("core", coll, amount, reserve_lt["core"][coll], debt, hf)))
            jobs.append((user, steps))
            self.fillers.append({"label": label, "user": user.lower(), "market": "core", "target_hf": str(hf) if hf else None})
        return jobs

    # -- the incident range ------------------------------------------------------------------------
    def _mine_empty_to(self, last: int) -> None:
        """Mine empty blocks up to ``last`` (included), each at its mainnet timestamp."""
        c = self.chain
        n = last - c.block_number
        if n <= 0:
            return
        c.rpc("anvil_setBlockTimestampInterval", [self.sc["range"]["block_seconds"]])
        c.set_next_timestamp(self._block_ts(c.block_number + 1))
        mine_empty(c, n)

    def _run_range(self) -> None:
        c, rng = self.chain, self.sc["range"]
        # Up to the range: cheap empty blocks one second apart.
        gap = rng["from_block"] - 1 - c.block_number
        if gap > 0:
            mine_empty(c, gap)
        for block in self.sc["timeline"]:
            self._mine_empty_to(block["block"] - 1)
            if c.block_number != block["block"] - 1:
                raise PostmortemError(f"the twin is at block {c.block_number}, not before {block['block']}")
            c.begin_batch()
            for tx in block["txs"]:
                self._queue(tx)
            receipts = c.mine_batch(self._block_ts(block["block"]))
            for tx, receipt in zip(block["txs"], receipts):
                self._record(tx, receipt)
        self._mine_empty_to(rng["to_block"] + FINALITY_MARGIN)

    def _queue(self, tx: dict) -> None:
        c, t = self.chain, self.book["tokens"]
        if tx["do"] == "set_cap_parameters":
            adapter = c.contract("CappedRatioAdapter", self.book["feeds"]["wsteth_capo"])
            c.send(adapter.functions.setCapParameters(int(tx["snapshot_ratio"]), int(tx["snapshot_timestamp"]),
                                                      int(tx["max_yearly_growth_bps"])), ROLES["risk_admin"],
                   label="setCapParameters")
        elif tx["do"] == "liquidate":
            c.send(self.pool(tx["market"]).functions.liquidationCall(
                t[tx["collateral"]]["address"], t[tx["debt"]]["address"], to_checksum_address(tx["user"]),
                int(tx["debt_to_cover"]), bool(tx["receive_a_token"])), to_checksum_address(tx["liquidator"]),
                label="liquidationCall")
        elif tx["do"] == "set_emode":
            c.send(self.pool(tx["market"]).functions.setUserEMode(int(tx["category"])), to_checksum_address(tx["user"]),
                   label="setUserEMode")
        else:
            raise PostmortemError(f"unknown twin transaction {tx['do']!r}")

    def _record(self, tx: dict, receipt) -> None:
        rec = {"do": tx["do"], **({"user": tx["user"].lower(), "category": int(tx["category"])}
                                  if tx["do"] == "set_emode" else {}), "block": receipt.blockNumber, "transaction_index": receipt.transactionIndex,
               "transaction_hash": receipt.transactionHash, "status": receipt.status,
               "timestamp": self._block_ts(receipt.blockNumber)}
        self.records.append(rec)
        if receipt.status != 1:
            raise ScenarioTxFailed(f"twin {tx['do']} ({tx.get('user', '')}) reverted in block {receipt.blockNumber}")
        if tx["do"] != "liquidate":
            return
        pool = self.book["markets"][tx["market"]]["pool"].lower()
        logs = [lg for lg in receipt.logs if lg.address.lower() == pool
                and "0x" + lg.topics[0].hex().removeprefix("0x") == LIQUIDATION_CALL_TOPIC]
        if len(logs) != 1:
            raise ScenarioTxFailed(f"liquidation in block {receipt.blockNumber} emitted {len(logs)} LiquidationCall logs")
        data = bytes(logs[0].data)
        self.liquidations.append({
            **rec, "log_index": logs[0].logIndex, "market": tx["market"], "user_label": tx["user"].lower(),
            "user": tx["user"].lower(), "liquidator": tx["liquidator"].lower(),
            "collateral_asset": tx["collateral"], "debt_asset": tx["debt"], "receive_a_token": tx["receive_a_token"],
            "targeted_debt_to_cover": tx["debt_to_cover"],
            "debt_to_cover": str(int.from_bytes(data[0:32], "big")),
            "liquidated_collateral_amount": str(int.from_bytes(data[32:64], "big")),
            "role": "victim", "wrongly_eligible": True, "mainnet": tx["mainnet"],
        })
