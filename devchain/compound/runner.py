"""The compound-v2 scenario runner: a Venus isolated pool, accounts, and a timeline of blocks.

A scenario (``devchain/scenarios/compound-*.json``, ``"runner": "compound-v2"``) has:

``world``        close factor, liquidation incentive, and per market (underlying symbol): decimals,
                 price in USD (the true price), collateral factor, liquidation threshold, interest
                 rate model, reserve factor, protocol seize share
``accounts``     label, role, ``supply`` {SYMBOL: amount} (entered as collateral) and ``borrow``
                 {SYMBOL: amount}, set up before the incident at the true prices
``liquidators``  labels; each gets every underlying and approves every market
``setup_txs``    transactions after the accounts, still before the incident (a risk-parameter change)
``timeline``     blocks with a ``timestamp`` and ``txs`` mined together in that order

Transactions (``do``): ``set_price`` (the oracle's price of one market, in USD; ``"misprice": true``
marks the start of the wrong price, ``"fix": true`` its correction), ``borrow``, ``supply``,
``repay``, ``liquidate`` (``repay`` amount of the borrowed asset, ``collateral`` market to seize),
``set_collateral_factor``, ``accrue`` (every market accrues interest, so stored balances are
current at that block).

Time never comes from the wall clock: the chain starts at ``genesis_timestamp``, each set-up
block is one second after the one before, and timeline blocks carry their own timestamps; so
two runs give the same blocks, to the hash.

Ground truth comes by construction, from each account's ``role``: a liquidation of a
``victim`` is wrongly eligible (solvent at the true price), of a ``control`` rightly eligible;
a borrow by an ``overborrower`` is wrongly allowed (allowed only at the reported price, ending
as bad debt at the true price), any other borrow in the window is allowed. ``bad_debt_at_end``
is computed from the chain's own stored balances at the last block, at the true prices (see
``bad_debt``).
"""

from __future__ import annotations

import time
from decimal import Decimal

from eth_utils import to_checksum_address

from postmortem.devchain.chain import Chain, ScenarioTxFailed, address_for
from postmortem.devchain.compound.deploy import (
    MANTISSA, ROLES, deploy_market, mantissa, price_units, variant,
)
from postmortem.errors import PostmortemError

MAX_UINT = 2**256 - 1
WRONGLY_ELIGIBLE_ROLES = {"victim"}
WRONGLY_ALLOWED_ROLES = {"overborrower"}


def units(value: str | int, decimals: int) -> int:
    v = Decimal(str(value)) * (Decimal(10) ** decimals)
    if v != v.to_integral_value():
        raise PostmortemError(f"amount {value} has more than {decimals} decimals")
    return int(v)


def _hex(h) -> str:
    text = h.hex() if isinstance(h, (bytes, bytearray)) else str(h)
    return text if text.startswith("0x") else "0x" + text


MARKET_FIELDS = ("decimals", "price_usd", "collateral_factor", "liquidation_threshold", "base_rate_per_year",
                 "multiplier_per_year", "reserve_factor")


def check_scenario(sc: dict) -> None:
    """Refuse a compound-v2 scenario that lacks what the runner reads, in one sentence."""
    name = sc.get("name", "?")
    missing = [k for k in ("genesis_timestamp", "world", "timeline") if k not in sc]
    world = sc.get("world") or {}
    missing += [f"world.{k}" for k in ("close_factor", "liquidation_incentive", "markets") if k not in world]
    for sym, m in (world.get("markets") or {}).items():
        missing += [f"world.markets.{sym}.{k}" for k in MARKET_FIELDS if k not in m]
    if missing:
        raise PostmortemError(f"scenario {name!r} (runner compound-v2) lacks {', '.join(missing)}; add them to its "
                              "JSON file (compound-lst-misprice.json shows each)")


class CompoundRunner:
    def __init__(self, chain: Chain, scenario: dict, *, progress: bool = False):
        check_scenario(scenario)
        self.chain = chain
        self.sc = scenario
        self.world = scenario["world"]
        self.progress = progress
        self.book: dict = {}
        self.liquidations: list[dict] = []
        self.borrows: list[dict] = []
        self.mispriced: dict = {}
        self.roles: dict[str, str] = {a["label"]: a.get("role", "borrower") for a in scenario.get("accounts", [])}

    # -- helpers -------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        if self.progress:
            print(msg, flush=True)

    def a(self, label: str) -> str:
        return address_for(f"compound:{label}")

    def market(self, sym: str) -> dict:
        if sym not in self.book["markets"]:
            raise PostmortemError(f"scenario {self.sc['name']!r} names market {sym!r}, which its world does not have")
        return self.book["markets"][sym]

    def vtoken(self, sym: str):
        return self.chain.contract("VenusVToken", self.market(sym)["vtoken"])

    def token(self, sym: str):
        return self.chain.contract("TestERC20", self.market(sym)["underlying"])

    def amount(self, sym: str, value) -> int:
        return units(value, self.market(sym)["decimals"])

    @property
    def comptroller(self):
        return self.chain.contract("VenusComptroller", self.book["comptroller"])

    def true_prices(self) -> dict[str, int]:
        return {sym: price_units(m["price_usd"], int(m["decimals"])) for sym, m in self.world["markets"].items()}

    # -- phases --------------------------------------------------------------------------
    def run(self) -> dict:
        t0 = time.monotonic()
        c = self.chain
        c.rpc("anvil_setBlockTimestampInterval", [1])
        c.mine(int(self.sc["genesis_timestamp"]))
        self.log(f"deploying a Venus isolated pool ({variant()}) ...")
        self.book = deploy_market(c, self.world)
        deploy_block = c.block_number
        self._setup()
        setup_end = c.block_number
        self.log(f"running the timeline ({len(self.sc.get('timeline', []))} blocks) ...")
        start_block = None
        for block in self.sc.get("timeline", []):
            number = self._run_block(block)
            start_block = start_block or number
        end_block = c.block_number
        self.book["accounts"] = {label: self.a(label) for label in self._all_labels()}
        bad = self.bad_debt(end_block)
        summary = {
            "deploy_block": deploy_block,
            "setup_end_block": setup_end,
            "start_block": start_block,
            "end_block": end_block,
            "fix_block": self.mispriced.get("fixed_at_block"),
            "liquidations": len(self.liquidations),
            "liquidations_wrongly_eligible": sum(1 for x in self.liquidations if x["expected"] == "wrongly-eligible"),
            "borrows": len(self.borrows),
            "borrows_wrongly_allowed": sum(1 for x in self.borrows if x["expected"] == "wrongly-allowed"),
            "seconds": round(time.monotonic() - t0, 2),
        }
        ground_truth = {
            "liquidations": self.liquidations,
            "borrows": self.borrows,
            "mispriced": self.mispriced,
            "bad_debt_at_end": bad,
            "accounts": [{"label": label, "address": self.a(label), "role": self.roles.get(label, "liquidator")}
                         for label in self._all_labels()],
        }
        return {"variant": variant(), "book": self.book, "summary": summary, "true_prices": self.true_prices(),
                "ground_truth": ground_truth}

    def _all_labels(self) -> list[str]:
        return [a["label"] for a in self.sc.get("accounts", [])] + list(self.sc.get("liquidators", []))

    def _setup(self) -> None:
        c = self.chain
        markets = self.book["markets"]
        for label in self.sc.get("liquidators", []):
            who = self.a(label)
            c.fund(who)
            for sym, m in markets.items():
                c.send(self.token(sym).functions.mint(who, 10**12 * 10 ** m["decimals"]), who, label="mint")
                c.send(self.token(sym).functions.approve(m["vtoken"], MAX_UINT), who, label="approve")
        accounts = self.sc.get("accounts", [])
        self.log(f"setting up {len(accounts)} accounts ...")
        # Lenders first, so that borrowers find cash.
        for acct in sorted(accounts, key=lambda x: x.get("role") != "lender"):
            who = self.a(acct["label"])
            c.fund(who, 100)
            supplied = list(acct.get("supply", {}))
            for sym, amt in acct.get("supply", {}).items():
                self._supply(who, sym, self.amount(sym, amt), acct["label"])
            if supplied and acct.get("role") != "lender":
                c.send(self.comptroller.functions.enterMarkets([self.market(s)["vtoken"] for s in supplied]), who,
                       label=f"{acct['label']} enterMarkets")
            for sym, amt in acct.get("borrow", {}).items():
                c.send(self.vtoken(sym).functions.borrow(self.amount(sym, amt)), who,
                       label=f"{acct['label']} borrow {sym}")
            for sym in markets:  # borrowers keep an allowance so that scenario repays work
                c.send(self.token(sym).functions.approve(markets[sym]["vtoken"], MAX_UINT), who, label="approve")
        for tx in self.sc.get("setup_txs", []):
            self._queue(tx)

    def _supply(self, who: str, sym: str, raw: int, label: str) -> None:
        c = self.chain
        c.send(self.token(sym).functions.mint(who, raw), who, label="mint")
        c.send(self.token(sym).functions.approve(self.market(sym)["vtoken"], MAX_UINT), who, label="approve")
        c.send(self.vtoken(sym).functions.mint(raw), who, label=f"{label} supply {sym}")

    def _run_block(self, block: dict) -> int:
        c = self.chain
        ts = int(block["timestamp"])
        latest = c.w3.eth.get_block("latest").timestamp
        if ts <= latest:
            raise PostmortemError(
                f"scenario {self.sc['name']!r}: a timeline block at timestamp {ts} does not come after the chain's "
                f"latest block (timestamp {latest}); give the timeline increasing timestamps, leaving one second "
                "per set-up block after genesis_timestamp"
            )
        txs = block.get("txs", [])
        if not txs:
            c.mine(ts)
            return c.block_number
        c.begin_batch()
        main_index: list[int] = []
        for tx in txs:
            self._queue(tx)
            main_index.append(len(c._pending) - 1)
        receipts = c.mine_batch(ts)
        number = receipts[0].blockNumber
        for tx, i in zip(txs, main_index):
            r = receipts[i]
            if r.status != 1:
                raise ScenarioTxFailed(f"scenario tx {tx['do']} ({tx.get('user', '')}) reverted in block "
                                       f"{r.blockNumber}: {self._revert_reason(r)}")
            self._record(tx, _hex(r.transactionHash), number)
        return number

    def _revert_reason(self, receipt) -> str:
        w3 = self.chain.w3
        tx = w3.eth.get_transaction(receipt.transactionHash)
        try:
            w3.eth.call({"from": tx["from"], "to": tx["to"], "data": tx["input"], "gas": tx["gas"]},
                        receipt.blockNumber - 1)
        except Exception as exc:  # noqa: BLE001 - decoding whatever the node says
            return self.chain.explain_revert(exc)
        return "unknown (succeeds alone: depends on earlier transactions in its block)"

    def _queue(self, tx: dict) -> None:
        c, do = self.chain, tx["do"]
        d = ROLES["deployer"]
        if do == "set_price":
            m = self.market(tx["asset"])
            oracle = c.contract("SteerableVenusOracle", self.book["oracle"])
            c.send(oracle.functions.setUnderlyingPrice(m["vtoken"], m["underlying"],
                                                       price_units(tx["price_usd"], m["decimals"])), d, label=do)
        elif do == "set_collateral_factor":
            c.send(self.comptroller.functions.setCollateralFactor(
                self.market(tx["asset"])["vtoken"], mantissa(tx["collateral_factor"]),
                mantissa(tx["liquidation_threshold"])), d, label=do)
        elif do == "borrow":
            c.send(self.vtoken(tx["asset"]).functions.borrow(self.amount(tx["asset"], tx["amount"])),
                   self.a(tx["user"]), label=do)
        elif do == "supply":
            self._supply(self.a(tx["user"]), tx["asset"], self.amount(tx["asset"], tx["amount"]), tx["user"])
        elif do == "repay":
            who, sym = self.a(tx["user"]), tx["asset"]
            raw = self.amount(sym, tx["amount"])
            c.send(self.token(sym).functions.mint(who, raw), who, label="mint")
            c.send(self.vtoken(sym).functions.repayBorrow(raw), who, label=do)
        elif do == "liquidate":
            c.send(self.vtoken(tx["debt"]).functions.liquidateBorrow(
                self.a(tx["user"]), self.amount(tx["debt"], tx["repay"]), self.market(tx["collateral"])["vtoken"]),
                self.a(tx["liquidator"]), label=do)
        elif do == "accrue":
            for sym in self.book["markets"]:
                c.send(self.vtoken(sym).functions.accrueInterest(), d, label=do)
        else:
            raise PostmortemError(f"unknown scenario transaction {do!r} in scenario {self.sc['name']!r}")

    # -- ground truth ----------------------------------------------------------------------
    def _receipt_event(self, tx_hash: str, sym: str, event: str):
        w3 = self.chain.w3
        receipt = w3.eth.get_transaction_receipt(tx_hash)
        vt = self.market(sym)["vtoken"].lower()
        ev = getattr(self.vtoken(sym).events, event)()
        topic = ev.topic if hasattr(ev, "topic") else None
        found = []
        for lg in receipt["logs"]:
            if lg["address"].lower() != vt:
                continue
            if topic is not None and _hex(lg["topics"][0]).lower() != _hex(topic).lower():
                continue
            try:
                found.append(ev.process_log(lg))
            except Exception:  # noqa: BLE001 - a log of another event
                continue
        if len(found) != 1:
            raise ScenarioTxFailed(f"transaction {tx_hash} emitted {len(found)} {event} logs on v{sym}")
        return receipt, found[0]

    def _record(self, tx: dict, tx_hash: str, block: int) -> None:
        do = tx["do"]
        if do == "set_price":
            if tx.get("misprice"):
                m = self.market(tx["asset"])
                self.mispriced = {"asset": tx["asset"], "vtoken": m["vtoken"], "reported_from_block": block,
                                  "fixed_at_block": None}
            elif tx.get("fix"):
                self.mispriced["fixed_at_block"] = block
        elif do == "liquidate":
            receipt, ev = self._receipt_event(tx_hash, tx["debt"], "LiquidateBorrow")
            role = self.roles.get(tx["user"], "unknown")
            if role not in ("victim", "control"):
                raise PostmortemError(f"scenario {self.sc['name']!r} liquidates {tx['user']!r}, whose role {role!r} "
                                      "says nothing of its verdict; give it role victim or control")
            self.liquidations.append({
                "tx_hash": tx_hash, "block_number": block, "transaction_index": receipt["transactionIndex"],
                "log_index": ev["logIndex"], "borrower": to_checksum_address(ev["args"]["borrower"]),
                "liquidator": to_checksum_address(ev["args"]["liquidator"]),
                "repay_vtoken": self.market(tx["debt"])["vtoken"],
                "collateral_vtoken": to_checksum_address(ev["args"]["vTokenCollateral"]),
                "repay_amount": int(ev["args"]["repayAmount"]), "seize_tokens": int(ev["args"]["seizeTokens"]),
                "expected": "wrongly-eligible" if role in WRONGLY_ELIGIBLE_ROLES else "rightly-eligible",
                "borrower_label": tx["user"], "repay_symbol": tx["debt"], "collateral_symbol": tx["collateral"],
            })
        elif do == "borrow":
            receipt, ev = self._receipt_event(tx_hash, tx["asset"], "Borrow")
            role = self.roles.get(tx["user"], "unknown")
            self.borrows.append({
                "tx_hash": tx_hash, "block_number": block, "transaction_index": receipt["transactionIndex"],
                "log_index": ev["logIndex"], "borrower": to_checksum_address(ev["args"]["borrower"]),
                "vtoken": self.market(tx["asset"])["vtoken"], "amount": int(ev["args"]["borrowAmount"]),
                "expected": "wrongly-allowed" if role in WRONGLY_ALLOWED_ROLES else "allowed",
                "borrower_label": tx["user"], "symbol": tx["asset"],
            })

    def bad_debt(self, block: int) -> dict[str, int]:
        """Debt not covered by collateral at the true prices, per borrowed asset, at ``block``.

        From the chain's stored values at ``block`` (the scenario's last blocks accrue every
        market, so they are current): for every account, collateral = sum over the markets it
        entered of floor(vToken balance x exchangeRateStored / 1e18) x true price; debt = sum of
        borrowBalanceStored x true price (values in USD x 1e36). When debt exceeds collateral the
        excess, floor-divided by the true price of the account's one borrowed asset, is bad debt
        in that asset's base units; every market listed (0 when none).
        """
        prices = self.true_prices()
        out = {sym: 0 for sym in self.book["markets"]}
        comp = self.comptroller
        for label in self._all_labels():
            who = self.a(label)
            entered = {v.lower() for v in comp.functions.getAssetsIn(who).call(block_identifier=block)}
            coll = debt = 0
            debts = []
            for sym, m in self.book["markets"].items():
                vt = self.vtoken(sym)
                _err, bal, borrow, rate = vt.functions.getAccountSnapshot(who).call(block_identifier=block)
                if m["vtoken"].lower() in entered:
                    coll += bal * rate // MANTISSA * prices[sym]
                if borrow:
                    debt += borrow * prices[sym]
                    debts.append(sym)
            if debt > coll:
                if len(debts) != 1:
                    raise PostmortemError(f"account {label!r} ends in bad debt over {len(debts)} assets; the scenario "
                                          "keeps one borrowed asset per account so bad debt has one asset")
                out[debts[0]] += (debt - coll) // prices[debts[0]]
        return out


def run_compound_scenario(url: str, scenario: dict, params: dict, *, progress: bool = False) -> dict:
    """Deploy and run a ``compound-v2`` scenario on the node at ``url``; returns the manifest
    (``"protocol": "compound-v2"``) and the ground truth, as ``devchain.manager`` writes them."""
    from postmortem import __version__
    from postmortem.devchain.compound.deploy import load_artifacts

    chain = Chain(url, load_artifacts())
    result = CompoundRunner(chain, scenario, progress=progress).run()
    summary = result["summary"]
    manifest = {
        "tool_version": __version__,
        "chain_id": chain.w3.eth.chain_id,
        "rpc_url": url,
        "scenario": scenario["name"],
        "scenario_params": params,
        "deploy_block": summary["deploy_block"],
        "protocol": "compound-v2",
        "variant": result["variant"],
        "summary": summary,
        "addresses": result["book"],
        "true_prices": result["true_prices"],
    }
    return {"manifest": manifest, "ground_truth": {"scenario": scenario["name"], **result["ground_truth"]}}
