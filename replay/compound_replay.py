"""The Compound v2 lineage's replay: every position event-sourced from the start snapshot, and
at every LiquidateBorrow and every Borrow the Comptroller's own rules under the reported and
under the true prices (:mod:`postmortem.replay.compound_v2`).

- A liquidation is judged just before its ``RepayBorrow`` (after the accruals of its own
  transaction, as ``liquidateBorrowAllowed`` runs): ``wrongly_eligible`` when it is allowed at
  the reported prices and not at the true ones, ``eligible_anyway`` when allowed at both,
  ``anomaly`` when the replay does not allow it at the reported prices. The replayed
  ``seizeTokens`` is compared with the log (``replay_matches_log``); the reported prices are those
  at the end of the previous block, or of the liquidation's own block when those are the ones
  that reproduce the logged seizure (an oracle change earlier in the same block).
- A borrow is judged just before its ``Borrow`` log (``borrowAllowed``'s hypothetical liquidity
  with the amount): ``wrongly_allowed`` when it leaves a shortfall at the true prices only.
- At the end: bad debt per market (accounts whose collateral at the true prices is worth less than
  their debt), and per borrower what every payout policy needs.

Amounts stay integers: USD values are the Comptroller's own USD x 1e18.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any, Mapping

import pyarrow as pa

from postmortem import __version__
from postmortem.errors import PostmortemError
from postmortem.replay.compound_book import CompoundBook
from postmortem.replay.compound_v2 import variant as variant_named
from postmortem.replay.compound_v2.comptroller import (
    PriceError, account_liquidity, borrow_allowed, liquidate_borrow_allowed, seize_tokens,
)
from postmortem.replay.compound_v2.ctoken import seize_split
from postmortem.replay.compound_v2.exp import EXP_SCALE, mul_scalar_truncate

OUTPUTS = ("compound_verdicts", "compound_borrow_verdicts", "compound_bad_debt", "compound_borrowers")


# -- true prices ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TruePrice:
    """The true price of one market's underlying, in oracle units (USD x 1e(36 - decimals))."""

    model: str                      # "constant" (USD), "constant_raw" (oracle units), "csv" (block,usd rows)
    price: int | None = None
    series: tuple[tuple[int, int], ...] = ()
    text: str = ""

    def at(self, block: int) -> int:
        if self.model == "csv":
            best = None
            for b, p in self.series:
                if b <= block:
                    best = p
            if best is None:
                raise PostmortemError(f"the true-price series {self.text} starts after block {block}; add a row for it")
            return best
        return int(self.price)


def _usd_to_oracle(text: str, decimals: int, what: str) -> int:
    try:
        value = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise PostmortemError(f"{what}: {text!r} is not a USD price; give a number such as 1.00 or 2200") from None
    if value <= 0:
        raise PostmortemError(f"{what}: the price must be above 0 (got {text})")
    return int(value * 10 ** (36 - decimals))  # floored to the oracle's unit, as an oracle would store it


def parse_true_price(symbol: str, spec: str | Mapping, decimals: int, base_dir: Path | None = None) -> TruePrice:
    """``constant:1.00`` / ``constant_raw:1000000000000000000`` / ``csv:FILE`` (or the incident file's table)."""
    if isinstance(spec, Mapping):
        model = str(spec.get("model", "constant"))
        param = spec.get("price") or spec.get("path") or spec.get("param")
    else:
        model, _, param = str(spec).partition(":")
    model, what = model.strip().lower(), f"true price of {symbol}"
    if model == "constant":
        return TruePrice("constant", _usd_to_oracle(param, decimals, what), text=f"constant:{param}")
    if model == "constant_raw":
        try:
            raw = int(str(param))
            usd = Fraction(raw, 10 ** (36 - decimals))
            shown = f"{float(usd):,.6g}" if usd.denominator != 1 else f"{int(usd):,}"
            return TruePrice("constant_raw", raw, text=f"constant ${shown} (raw {raw})")
        except ValueError:
            raise PostmortemError(f"{what}: constant_raw takes an integer in oracle units, not {param!r}") from None
    if model == "csv":
        path = Path(str(param))
        if not path.is_absolute() and base_dir is not None and not path.exists():
            path = base_dir / path
        if not path.exists():
            raise PostmortemError(f"{what}: the CSV {param} does not exist; give a file with block,usd rows")
        rows = []
        with path.open() as f:
            for r in csv.reader(f):
                if not r or not r[0].strip().isdigit():
                    continue  # a header or a blank line
                rows.append((int(r[0]), _usd_to_oracle(r[1], decimals, what)))
        if not rows:
            raise PostmortemError(f"{what}: {path} holds no block,usd rows")
        return TruePrice("csv", series=tuple(sorted(rows)), text=f"csv:{path.name} ({len(rows)} points)")
    raise PostmortemError(f"{what}: unknown model {model!r}; use constant:USD, constant_raw:INTEGER or csv:FILE")


# -- inputs -----------------------------------------------------------------------------------------------


@dataclass
class CompoundInputs:
    chain_id: int
    from_block: int
    to_block: int
    variant: str
    markets: list[dict]
    events: list[dict]
    positions: list[dict]
    reads: list[dict]
    oracle_logs: list[tuple[int, int]] = field(default_factory=list)
    input_files: dict[str, str] = field(default_factory=dict)


def load_compound_inputs(root: Path, *, chain_id: int, comptroller: str, from_block: int, to_block: int,
                         variant: str) -> CompoundInputs:
    from postmortem.replay.inputs import _rows
    from postmortem.sql import connect_read_only
    from postmortem.warehouse import Warehouse

    con = connect_read_only(root)
    try:
        markets = _rows(con, "SELECT * FROM compound_markets WHERE chain_id = ? AND comptroller = ? AND block_number = ? "
                             "ORDER BY market", [chain_id, comptroller, from_block - 1])
        if not markets:
            raise PostmortemError(f"the warehouse has no Compound markets of {comptroller} at block {from_block - 1}; "
                                  "run `postmortem ingest` for this incident first")
        mk = [m["market"] for m in markets]
        inlist = ", ".join("?" for _ in mk)
        events = _rows(con, "SELECT * FROM compound_events WHERE chain_id = ? AND block_number BETWEEN ? AND ? AND "
                            f"(address = ? OR address IN ({inlist})) ORDER BY block_number, log_index",
                       [chain_id, from_block, to_block, comptroller, *mk])
        positions = _rows(con, f"SELECT * FROM compound_positions_at_start WHERE chain_id = ? AND block_number = ? AND "
                               f"market IN ({inlist})", [chain_id, from_block - 1, *mk])
        reads = _rows(con, f"SELECT * FROM compound_market_reads WHERE chain_id = ? AND block_number BETWEEN ? AND ? "
                           f"AND market IN ({inlist})", [chain_id, from_block - 1, to_block, *mk])
        oracle = markets[0]["oracle"]
        oracle_logs = [(r["block_number"], r["log_index"]) for r in _rows(
            con, "SELECT block_number, log_index FROM compound_logs WHERE chain_id = ? AND block_number BETWEEN ? AND ? "
                 "AND address = ?", [chain_id, from_block, to_block, oracle])]
    finally:
        con.close()
    files = Warehouse(root).input_hashes(chain_id, ["compound_markets", "compound_events", "compound_positions_at_start",
                                                    "compound_market_reads", "compound_logs"], from_block, to_block)
    return CompoundInputs(chain_id, from_block, to_block, variant, markets, events, positions, reads, oracle_logs, files)


# -- the replay -------------------------------------------------------------------------------------------


@dataclass
class CompoundResult:
    tables: dict[str, list[dict]]
    summary: dict
    book: CompoundBook | None = None


def _usd(price: int, amount: int) -> int:
    return price * amount // EXP_SCALE


def run_compound_replay(inputs: CompoundInputs, true_prices: Mapping[str, TruePrice]) -> CompoundResult:
    """Replay ``inputs`` in memory; ``true_prices`` maps market address -> its true price model
    (markets not in it are true at their reported price)."""
    t0 = time.monotonic()
    v = variant_named(inputs.variant)
    book = CompoundBook.at_start(inputs.markets, inputs.positions)
    sym = {m["market"]: m["symbol"] for m in inputs.markets}
    reads: dict[int, dict[str, dict]] = {}
    for r in inputs.reads:
        reads.setdefault(int(r["block_number"]), {})[r["market"]] = r
    oracle_logs: dict[int, list[int]] = {}
    for b, li in inputs.oracle_logs:
        oracle_logs.setdefault(int(b), []).append(int(li))

    def reported(block: int, log_index: int, prefer_end: bool = False) -> dict[str, int]:
        same = prefer_end or any(li < log_index for li in oracle_logs.get(block, ()))
        src = reads.get(block if same else block - 1) or reads.get(block - 1) or {}
        return {m: int(src[m]["price"]) if m in src and src[m]["price"] is not None else 0 for m in book.markets}

    def true_of(block: int, rep: dict[str, int]) -> dict[str, int]:
        return {m: (true_prices[m].at(block) if m in true_prices else p) for m, p in rep.items()}

    by_tx: dict[str, list[dict]] = {}
    for e in inputs.events:
        by_tx.setdefault(e["transaction_hash"], []).append(e)
    # The RepayBorrow each liquidation is judged before: the last one of its market and borrower
    # before the LiquidateBorrow in the same transaction.
    judge_before: dict[tuple[str, int], dict] = {}
    for tx, evs in by_tx.items():
        for e in evs:
            if e["event"] == "LiquidateBorrow":
                cands = [r for r in evs if r["event"] == "RepayBorrow" and r["market"] == e["market"]
                         and r["account"] == e["account"] and r["log_index"] < e["log_index"]]
                if cands:
                    judge_before[(tx, cands[-1]["log_index"])] = e

    verdicts, borrows = [], []
    current_block = None
    seized_moved: dict[tuple[str, str, str], int] = {}
    judged: set[tuple[str, int]] = set()
    for e in inputs.events:
        b = int(e["block_number"])
        if b != current_block:
            prev = reads.get(b - 1, {})
            for mk, r in prev.items():
                if mk in book.markets:
                    book.sync_market(mk, r)
            current_block = b
        liq = judge_before.get((e["transaction_hash"], e["log_index"]))
        if liq is not None:
            verdicts.append(_judge_liquidation(v, book, liq, reported, true_of, sym))
            judged.add((liq["transaction_hash"], liq["log_index"]))
        if e["event"] == "LiquidateBorrow" and (e["transaction_hash"], e["log_index"]) not in judged:
            # No RepayBorrow of its own before it (not a plain liquidateBorrow): judged where it stands,
            # and its seizure checked against the log like any other.
            verdicts.append(_judge_liquidation(v, book, e, reported, true_of, sym))
        if e["event"] == "Borrow":
            borrows.append(_judge_borrow(v, book, e, reported, true_of, sym))
        if e["event"] == "Transfer":
            key = (e["transaction_hash"], e.get("account"), e.get("market"))
            seized_moved[key] = seized_moved.get(key, 0) + int(e["tokens"])
        if e["event"] == "LiquidateBorrow":
            moved = seized_moved.get((e["transaction_hash"], e["account"], e["collateral_market"]), 0)
            book.debit_seized(e["account"], e["collateral_market"], int(e["tokens"]) - moved)
        book.apply(e)

    end_prices = reported(inputs.to_block, 10**9, prefer_end=True)
    end_true = true_of(inputs.to_block, end_prices)
    bad_rows, insolvent = _bad_debt(v, book, end_true, sym)
    for r in borrows:
        r["insolvent_at_end"] = r["user"] in insolvent
    people = _borrowers(verdicts, borrows, insolvent)
    tables = {"compound_verdicts": verdicts, "compound_borrow_verdicts": borrows, "compound_bad_debt": bad_rows,
              "compound_borrowers": people}
    counts = {k: sum(1 for x in verdicts if x["verdict"] == k) for k in ("wrongly_eligible", "eligible_anyway", "anomaly")}
    bcounts = {k: sum(1 for x in borrows if x["verdict"] == k) for k in ("wrongly_allowed", "allowed", "anomaly")}
    summary = {
        "protocol": "compound-v2", "variant": v.name, "from_block": inputs.from_block, "to_block": inputs.to_block,
        "markets": {sym[m]: m for m in book.markets}, "true_price": {sym[m]: t.text for m, t in true_prices.items()},
        "positions_start": len(inputs.positions), "events_applied": book.events_applied, "state_drift": book.drift,
        "liquidations": len(verdicts), "verdicts": counts, "borrows": len(borrows), "borrow_verdicts": bcounts,
        "replay_mismatches": sum(not x["replay_matches_log"] for x in verdicts),
        "bad_debt_usd": sum(r["bad_debt_usd"] for r in bad_rows),
        "bad_debt": {r["symbol"]: str(r["bad_debt"]) for r in bad_rows},
        "wrongly_allowed_borrowers": sorted({r["user"] for r in borrows if r["verdict"] == "wrongly_allowed"}),
        "oracle_loss_usd": sum(x["oracle_loss_usd"] for x in verdicts),
        "rows": {k: len(t) for k, t in tables.items()}, "seconds": round(time.monotonic() - t0, 3),
    }
    return CompoundResult(tables, summary, book)


def _liq_of(liq) -> dict:
    return {"liquidity": liq.liquidity, "shortfall": liq.shortfall} if liq is not None else {"liquidity": None,
                                                                                             "shortfall": None}


def _judge_liquidation(v, book: CompoundBook, ev: dict, reported, true_of, sym) -> dict:
    b, user, debt, coll = int(ev["block_number"]), ev["account"], ev["market"], ev["collateral_market"]
    repay, logged = int(ev["amount"]), int(ev["tokens"])
    er = book.markets[coll].exchange_rate()
    incentive = book.liquidation_incentive

    def seize_at(prices):
        try:
            return seize_tokens(v, repay_amount=repay, price_borrowed=prices[debt], price_collateral=prices[coll],
                                exchange_rate_collateral=er, liquidation_incentive=incentive)
        except PriceError:
            return None

    rep = reported(b, int(ev["log_index"]))
    replayed = seize_at(rep)
    if replayed != logged:  # an oracle change earlier in the same block: the block's end prices
        alt = reported(b, int(ev["log_index"]), prefer_end=True)
        if seize_at(alt) == logged:
            rep, replayed = alt, logged
    tru = true_of(b, rep)
    balance = book.borrow_balance(user, debt)
    kw = dict(borrow_balance=balance, repay_amount=repay, close_factor=book.close_factor,
              min_liquidatable_collateral=book.min_liquidatable_collateral)
    cr = liquidate_borrow_allowed(v, book.holdings(user, rep), **kw)
    ct = liquidate_borrow_allowed(v, book.holdings(user, tru), **kw)
    verdict = "anomaly" if not cr.allowed else ("eligible_anyway" if ct.allowed else "wrongly_eligible")
    _liq, protocol_tokens, _ = seize_split(v, logged, er, book.markets[coll].protocol_seize_share, incentive)
    seized = mul_scalar_truncate(er, logged)
    repaid_true = _usd(tru[debt], repay)
    seized_true = _usd(tru[coll], seized)
    lr, lt = _liq_of(cr.liquidity), _liq_of(ct.liquidity)
    return {
        "block_number": b, "transaction_index": int(ev["transaction_index"]), "log_index": int(ev["log_index"]),
        "transaction_hash": ev["transaction_hash"], "timestamp": int(ev["timestamp"]), "user": user,
        "liquidator": ev["counterparty"], "debt_market": debt, "debt_symbol": sym[debt], "collateral_market": coll,
        "collateral_symbol": sym[coll], "repay_amount": repay, "seize_tokens": logged,
        "seize_tokens_replayed": replayed, "protocol_seize_tokens": protocol_tokens, "collateral_seized": seized,
        "borrow_balance": balance, "max_close": cr.max_close,
        "liquidity_reported": lr["liquidity"], "shortfall_reported": lr["shortfall"],
        "liquidity_true": lt["liquidity"], "shortfall_true": lt["shortfall"],
        "reason_reported": cr.reason, "reason_true": ct.reason, "verdict": verdict,
        "debt_price_reported": rep[debt], "debt_price_true": tru[debt],
        "collateral_price_reported": rep[coll], "collateral_price_true": tru[coll],
        "liquidation_incentive": incentive, "repaid_usd_true": repaid_true, "seized_usd_true": seized_true,
        "seized_usd_reported": _usd(rep[coll], seized),
        "oracle_loss_usd": max(0, seized_true - repaid_true * incentive // EXP_SCALE),
        "bonus_loss_usd": repaid_true * max(0, incentive - EXP_SCALE) // EXP_SCALE,
        "replay_matches_log": replayed == logged,
    }


def _judge_borrow(v, book: CompoundBook, ev: dict, reported, true_of, sym) -> dict:
    b, user, mk, amount = int(ev["block_number"]), ev["account"], ev["market"], int(ev["amount"])
    rep = reported(b, int(ev["log_index"]))
    tru = true_of(b, rep)
    # borrowAllowed enters the market first when the borrower is not in it (MarketEntered precedes).
    book.entered.setdefault(user, set()).add(mk)
    try:
        ok_r, lr = borrow_allowed(v, book.holdings(user, rep), market=mk, borrow_amount=amount)
    except PriceError:
        ok_r, lr = False, None
    try:
        ok_t, lt = borrow_allowed(v, book.holdings(user, tru), market=mk, borrow_amount=amount)
    except PriceError:
        ok_t, lt = False, None
    verdict = "anomaly" if not ok_r else ("allowed" if ok_t else "wrongly_allowed")
    a, t = _liq_of(lr), _liq_of(lt)
    return {
        "block_number": b, "transaction_index": int(ev["transaction_index"]), "log_index": int(ev["log_index"]),
        "transaction_hash": ev["transaction_hash"], "timestamp": int(ev["timestamp"]), "user": user,
        "market": mk, "symbol": sym[mk], "amount": amount, "price_reported": rep[mk], "price_true": tru[mk],
        "liquidity_reported": a["liquidity"], "shortfall_reported": a["shortfall"],
        "liquidity_true": t["liquidity"], "shortfall_true": t["shortfall"], "verdict": verdict,
        "borrowed_usd_true": _usd(tru[mk], amount), "insolvent_at_end": False,
    }


def _bad_debt(v, book: CompoundBook, prices: dict[str, int], sym) -> tuple[list[dict], set[str]]:
    per: dict[str, dict] = {m: {"accounts": 0, "borrows": 0, "bad_debt": 0, "bad_debt_usd": 0} for m in book.markets}
    insolvent = set()
    for user in book.borrowers():
        holdings = book.holdings(user, prices)
        debts = {mk: book.borrow_balance(user, mk) for mk in book.accounts[user] if book.borrow_balance(user, mk)}
        if not debts:
            continue
        liq = account_liquidity(v, holdings) if holdings else None
        collateral = liq.total_collateral if liq else 0
        owed = sum(_usd(prices[mk], amt) for mk, amt in debts.items())
        if collateral >= owed:
            continue
        insolvent.add(user)
        uncovered = owed - collateral
        for mk, amt in debts.items():
            share = amt * uncovered // owed          # the uncovered part, in proportion to the debt's value
            per[mk]["accounts"] += 1
            per[mk]["borrows"] += amt
            per[mk]["bad_debt"] += share
            per[mk]["bad_debt_usd"] += _usd(prices[mk], share)
    rows = [{"market": mk, "symbol": sym[mk], **d, "price_true": prices[mk]}
            for mk, d in sorted(per.items(), key=lambda kv: sym[kv[0]]) if d["accounts"]]
    return rows, insolvent


def _borrowers(verdicts: list[dict], borrows: list[dict], insolvent: set[str]) -> list[dict]:
    users = sorted({x["user"] for x in verdicts} | {x["user"] for x in borrows if x["verdict"] == "wrongly_allowed"})
    out = []
    for u in users:
        vs = [x for x in verdicts if x["user"] == u]
        wa = [x for x in borrows if x["user"] == u and x["verdict"] == "wrongly_allowed"]
        role = "both" if vs and wa else ("victim" if vs else "wrongly_allowed_borrower")
        out.append({
            "user": u, "role": role, "liquidations": len(vs),
            "wrongly_eligible_liquidations": sum(x["verdict"] == "wrongly_eligible" for x in vs),
            "wrongly_allowed_borrows": len(wa),
            "repaid_usd_true": sum(x["repaid_usd_true"] for x in vs),
            "seized_usd_true": sum(x["seized_usd_true"] for x in vs),
            "oracle_loss_usd": sum(x["oracle_loss_usd"] for x in vs),
            "bonus_loss_wrongly_eligible_usd": sum(x["bonus_loss_usd"] for x in vs if x["verdict"] == "wrongly_eligible"),
            "wrongly_allowed_usd_true": sum(x["borrowed_usd_true"] for x in wa),
            "insolvent_at_end": u in insolvent,
        })
    return out


# -- the stage API ----------------------------------------------------------------------------------------


def to_arrow(name: str, rows: list[dict]) -> pa.Table:
    from postmortem import schema_docs

    schema = schema_docs.get(name).arrow_schema()
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema}, schema=schema)


def true_prices_for(incident, markets: list[dict], overrides: list[str] | None, base_dir: Path | None) -> dict[str, TruePrice]:
    """market address -> true price, from the incident's ``[true_price]`` and ``--true-price`` overrides."""
    by_sym = {m["symbol"]: m for m in markets}
    specs: dict[str, Any] = dict(incident.true_price or {})
    for text in overrides or []:
        s, sep, spec = str(text).partition("=")
        if not sep:
            raise PostmortemError(f"--true-price {text!r} is not SYMBOL=MODEL:PARAM; e.g. --true-price DAI=constant:1.00")
        specs[s.strip()] = spec.strip()
    out = {}
    for s, spec in specs.items():
        if s not in by_sym:
            raise PostmortemError(f"true price for {s}: no market of this incident is called {s}; known: "
                                  f"{', '.join(sorted(by_sym))}")
        out[by_sym[s]["market"]] = parse_true_price(s, spec, int(by_sym[s]["decimals"]), base_dir)
    return out


def replay_compound(warehouse_root: Path | str, incident_id: str, *, true_price_overrides=None, from_block=None,
                    to_block=None, run_id: str | None = None, devchain_dir: Path | None = None, **_ignored) -> dict:
    """Replay a Compound v2 lineage incident over what the warehouse holds; write the outputs
    (``compound_verdicts``, ``compound_borrow_verdicts``, ``compound_bad_debt``, ``compound_borrowers``)."""
    from postmortem.incidents import incident_file, load_incident
    from postmortem.replay.inputs import ingested_window
    from postmortem.warehouse import RUN_OUTPUTS_KEY, Warehouse

    started = datetime.now(timezone.utc)
    root = Path(warehouse_root)
    _raw, path = incident_file(incident_id)
    inc = load_incident(incident_id, devchain_dir=devchain_dir)
    if not (root / "catalog.duckdb").exists():
        raise PostmortemError(f"the warehouse at {root} holds no data yet; run `postmortem ingest --incident {incident_id}` first")
    window = ingested_window(root, incident_id)
    a = int(from_block if from_block is not None else (window or {}).get("from_block") or inc.from_block)
    b = int(to_block if to_block is not None else (window or {}).get("to_block") or inc.to_block)
    inputs = load_compound_inputs(root, chain_id=inc.chain_id, comptroller=inc.comptroller, from_block=a, to_block=b,
                                  variant=inc.variant)
    models = true_prices_for(inc, inputs.markets, list(true_price_overrides or []), path.parent)
    result = run_compound_replay(inputs, models)
    params = {"incident_id": incident_id, "protocol": "compound-v2", "variant": inc.variant, "from_block": a,
              "to_block": b, "comptroller": inc.comptroller, "chain_id": inc.chain_id,
              "true_price": {m: t.text for m, t in sorted(models.items())}}
    digest = json.dumps({"params": params, "models": {m: [t.model, t.price, list(t.series)] for m, t in models.items()},
                         "inputs": sorted(inputs.input_files.items()), "tool_version": __version__},
                        sort_keys=True, default=str)
    run_id = run_id or hashlib.sha256(digest.encode()).hexdigest()[:16]
    provenance = {"parameters": params, "inputs": inputs.input_files, "tool_version": __version__,
                  RUN_OUTPUTS_KEY: sorted(OUTPUTS)}
    wh = Warehouse(root)
    with wh.lock(f"postmortem replay --incident {incident_id}"):
        for name in OUTPUTS:
            wh.write_output(inc.chain_id, name, incident_id, run_id, to_arrow(name, result.tables[name]), provenance)
        summary = {**result.summary, "run_id": run_id, "incident_id": incident_id, "chain_id": inc.chain_id}
        wh.record_run("replay", params, summary, run_id=run_id, started_at=started,
                      finished_at=datetime.now(timezone.utc))
        wh.refresh_catalog()
    return summary
