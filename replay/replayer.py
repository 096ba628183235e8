"""The replayer: every position at every checkpoint, under the reported and the true price.

One pass over the window, in chain order (``block, transaction_index, log_index``), moves three
books forward together: positions (:mod:`replay.positions`), reserves (:mod:`replay.reserve_book`: indexes from
``ReserveDataUpdated``, risk parameters from the configurator's events) and price sources
(:mod:`replay.prices`), over the stream of :mod:`replay.stream`. Block-end reads (``capo_states``, ``feed_answers``, ``oracle_prices``)
are applied after a block's logs; the reported prices they give are checked against
``oracle_prices`` at every block end read.

Checkpoints, in order:

``start``         the state at ``from_block - 1`` (positions_at_start);
``liquidation``   just before each ``LiquidationCall``: after every log of the earlier
                  transactions of its block and of an earlier ``LiquidationCall`` in the same
                  transaction, at the block's timestamp;
``price_change``  the end of every block where any reported price differs from the previous
                  block end the warehouse holds;
``end``           the end of the window.

At each checkpoint the whole population of each market is screened with floats (NumPy; after a
full screen only the users a proven bound cannot rule out are recomputed, see
``FloatMirror.screen_below``); every position whose health factor under either price is below
``health_band`` (and every liquidated borrower) is then valued exactly. The screened users are
valued together by :mod:`replay.vector_valuation` (NumPy, exact where proven: identical to the
reference or left to it); liquidated borrowers, wrongly eligible positions (their per-reserve
breakdown feeds the verdicts and the at-risk list) and any user the vector path cannot prove are
valued by the scalar reference :mod:`replay.aave_math`. The health table, the verdicts and the
at-risk list come only from exact values; ``exact_path="scalar"`` runs the reference alone
(``tests/test_replay_equivalence.py`` checks both give identical tables).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Mapping

import numpy as np

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    RAY,
    ReserveState,
    Revision,
    execute_liquidation_call,
    get_normalized_debt,
    get_normalized_income,
    health_factor,
    rules_for,
)
from postmortem.replay.aave_math.generic_logic import get_user_reserve_liquidation_threshold
from postmortem.replay.health_rows import FastValues, HealthRows
from postmortem.replay.inputs import ReplayInputs
from postmortem.replay.positions import FloatMirror, PositionBook, TokenRef
from postmortem.replay.prices import PriceBook, TrueModel, price_sources
from postmortem.replay.reserve_book import ReserveBook, pool_revision
from postmortem.replay.rows import at_risk_rows, borrower_rows, liquidator_rows
from postmortem.replay.stream import event_stream
from postmortem.replay.vector_valuation import account_sums, segment_rows
from postmortem.replay.verdicts import classify, loss_parts, max_liquidatable_debt, to_units

__all__ = ["Checkpoint", "Replayer"]

ZERO = "0x" + "0" * 40


@dataclass(frozen=True)
class Checkpoint:
    ordinal: int
    kind: str
    block_number: int
    transaction_index: int | None
    after_log_index: int | None
    timestamp: int


class Replayer:
    """One pass over a window: the books, the checkpoints and the output rows (see the module docstring).

    ``exact_path="vector"`` (the default) values the screened users of a checkpoint together with
    :mod:`replay.vector_valuation` when there are at least ``vector_min_users`` of them (below that the
    fixed cost of a NumPy pass exceeds the scalar one); ``"scalar"`` values every one with the
    reference :func:`aave_math.health_factor`. Both give the same rows (``tests/test_replay_equivalence.py``).
    """

    vector_min_users = 48

    def __init__(self, inputs: ReplayInputs, true_models: Mapping[str, TrueModel], *, eth_asset: str | None,
                 health_band: float, exact_path: str = "vector"):
        if exact_path not in ("vector", "scalar"):
            raise ValueError(f"exact_path is 'vector' or 'scalar', not {exact_path!r}")
        self.exact_path = exact_path
        self.inputs = inputs
        self.health_band = health_band
        self.market_of = {m["pool"]: m["market"] for m in inputs.markets}
        self.revisions: dict[str, Revision] = {}
        for m in inputs.markets:
            self.revisions[m["pool"]] = pool_revision(m)
        self.symbol = {(r["pool"], r["asset"]): r["symbol"] for r in inputs.reserves}
        self.assets_by_pool: dict[str, list[str]] = defaultdict(list)
        tokens = {}
        for r in sorted(inputs.reserves, key=lambda r: (r["pool"], int(r["reserve_id"]))):
            self.assets_by_pool[r["pool"]].append(r["asset"])
            tokens[r["a_token"]] = TokenRef(r["pool"], r["asset"], "a")
            tokens[r["variable_debt_token"]] = TokenRef(r["pool"], r["asset"], "v")
        self.tokens = tokens
        self.a_token_of = {(r["pool"], r["asset"]): r["a_token"] for r in inputs.reserves}
        self.mirror = FloatMirror(self.assets_by_pool)
        self.book = PositionBook(tokens, self.revisions, mirror=self.mirror)
        self.book.load_start(inputs.positions_at_start)
        self.reserves = ReserveBook(inputs, self.revisions)
        self.prices = PriceBook(price_sources(inputs.reserves), dict(true_models))
        self.timestamps = {int(b["block_number"]): int(b["timestamp"]) for b in inputs.blocks}
        self.eth_asset = eth_asset or next((r["asset"] for r in inputs.reserves if r["symbol"] in ("WETH", "ETH")), None)
        # AnswerUpdated may come from a proxy's aggregator: map emitters to the feeds they move.
        self.answer_targets: dict[str, set[str]] = defaultdict(set)
        for feed in self.prices.tracked_feeds():
            self.answer_targets[feed].add(feed)
        for r in inputs.reserves:
            if r.get("feed_aggregator"):
                self.answer_targets[r["feed_aggregator"]].add(r["price_source"])
            if r.get("base_feed_aggregator") and r.get("base_feed"):
                self.answer_targets[r["base_feed_aggregator"]].add(r["base_feed"])
        self.configurator_pool = {m["pool_configurator"]: m["pool"] for m in inputs.markets if m.get("pool_configurator")}
        self.pools = [m["pool"] for m in inputs.markets]
        # outputs and bookkeeping
        self.checkpoints: list[Checkpoint] = []
        self.health_rows = HealthRows()  # the health table, by columns (replay.health_rows)
        self.verdict_rows: list[dict] = []
        self.price_rows: list[dict] = []
        self.price_mismatches: list[dict] = []
        self.state_drift: list[dict] = []
        self.last_block_prices: dict[tuple[str, str], int] | None = None
        self.oracle_at: dict[tuple[int, str, str], int] = {}
        self.risk: dict[tuple[str, str], dict] = {}
        self.liquidated: set[tuple[str, str]] = set()
        self.to_be_liquidated = {(r["address"], r["user"]) for r in inputs.events.get("liquidations", [])}
        self.screened = 0
        self.exact = 0
        self._lt_cache: dict[str, tuple[int, np.ndarray]] = {}
        self._memo: dict[tuple[str, str], tuple] = {}
        self._reserves_cache: dict[str, tuple] = {}
        self._rows_cache: dict[str, tuple] = {}
        self._exact_cache: dict[str, tuple] = {}
        self.fast = 0  # user-checkpoints valued by the vector path

    # ---- the stream

    def run(self) -> None:
        b = self.inputs.to_block
        if b not in self.timestamps:
            raise PostmortemError(f"the warehouse has no header for block {b}, the end of the window; re-run the ingest")
        items = event_stream(self.inputs, tokens=self.tokens, pools=self.pools, capo_adapters=self.prices.capo,
                             answer_emitters=self.answer_targets, configurators=self.configurator_pool,
                             timestamps=self.timestamps)
        for (blk, tx, log, _prio), kind, row in items:
            handler = getattr(self, f"_on_{kind}")
            if kind == "start":
                handler(blk)
            elif kind == "block_end":
                handler(row)
            elif kind == "liquidation":
                handler(row, blk, tx, log)
            else:
                handler(row)
        self._close_risk(self.timestamps[b])

    def _ts(self, block: int) -> int:
        try:
            return self.timestamps[block]
        except KeyError:
            raise PostmortemError(f"the warehouse has no header (timestamp) for block {block}; re-run the ingest") from None

    # ---- event handlers

    def _on_mint(self, r):
        self.book.apply_token_event(r["address"], "mint", r["on_behalf_of"], int(r["value"]),
                                    int(r["balance_increase"]), int(r["index"]))

    def _on_burn(self, r):
        self.book.apply_token_event(r["address"], "burn", r["from_address"], int(r["value"]),
                                    int(r["balance_increase"]), int(r["index"]))

    def _on_balance_transfer(self, r):
        self.book.apply_balance_transfer(r["address"], r["from_address"], r["to_address"], int(r["value"]))

    def _on_toggle(self, r):
        self.book.apply_collateral_toggle(r["address"], r["reserve"], r["user"], bool(r["enabled"]))

    def _on_emode(self, r):
        self.book.apply_emode(r["address"], r["user"], int(r["category_id"]))

    def _on_reserve_update(self, r):
        self.reserves.apply_update(r["address"], r["reserve"], r, self._ts(int(r["block_number"])))

    def _on_cap(self, r):
        self.prices.apply_cap_parameters(r["address"], int(r["snapshot_ratio"]), int(r["snapshot_timestamp"]),
                                         int(r["max_ratio_growth_per_second"]))

    def _on_answer(self, r):
        for feed in self.answer_targets.get(r["address"], ()):
            self.prices.apply_answer(feed, int(r["answer"]))

    def _on_collateral_configuration_changes(self, r):
        self.reserves.apply_config(self.configurator_pool[r["address"]], r["asset"], ltv_bps=int(r["ltv"]),
                                   liquidation_threshold_bps=int(r["liquidation_threshold"]),
                                   liquidation_bonus_bps=int(r["liquidation_bonus"]))

    def _on_liquidation_protocol_fee_changes(self, r):
        self.reserves.apply_config(self.configurator_pool[r["address"]], r["asset"],
                                   liquidation_protocol_fee_bps=int(r["new_fee"]))

    def _on_emode_category_additions(self, r):
        self.reserves.apply_emode_category(self.configurator_pool[r["address"]], int(r["category_id"]), int(r["ltv"]),
                                           int(r["liquidation_threshold"]), int(r["liquidation_bonus"]))

    def _on_emode_collateral_changes(self, r):
        self.reserves.apply_emode_collateral(self.configurator_pool[r["address"]], r["asset"], int(r["category_id"]),
                                             bool(r["collateral"]))

    def _on_snap_capo(self, r):
        adapter = r["adapter"]
        st = self.prices.capo.get(adapter)
        blk = int(r["block_number"])
        new = (int(r["snapshot_ratio"]), int(r["snapshot_timestamp"]), int(r["max_ratio_growth_per_second"]))
        if st is not None and blk >= self.inputs.from_block and st.snapshot_ratio:
            old = (st.snapshot_ratio, st.snapshot_timestamp, st.max_ratio_growth_per_second)
            if old != new:
                self.state_drift.append({"block_number": blk, "source": adapter, "what": "cap parameters",
                                         "replayed": old, "read": new})
        base_feed = r.get("base_feed") or next(
            (s.base_feed for s in self.prices.sources.values() if s.source == adapter), None)
        self.prices.set_capo_snapshot(adapter, *new, int(r["ratio"]), _opt_int(r.get("base_answer")), base_feed)

    def _on_snap_feed(self, r):
        self.prices.apply_answer(r["feed"], int(r["answer"]))

    def _on_snap_oracle(self, r):
        self.oracle_at[(int(r["block_number"]), r["pool"], r["asset"])] = int(r["price"])
        self.prices.set_oracle_price(r["pool"], r["asset"], int(r["price"]))

    # ---- checkpoints

    def _on_start(self, blk: int) -> None:
        self.last_block_prices = self._block_prices(blk, self._ts(blk))
        self._checkpoint("start", blk, None, None, forced={})

    def _on_block_end(self, blk: int) -> None:
        ts = self._ts(blk)
        now = self._block_prices(blk, ts)
        changed = self.last_block_prices is not None and now != self.last_block_prices
        self.last_block_prices = now
        if blk == self.inputs.to_block:
            self._checkpoint("end", blk, None, None, forced={})
        elif changed:
            self._checkpoint("price_change", blk, None, None, forced={})

    def _block_prices(self, blk: int, ts: int) -> dict[tuple[str, str], int]:
        """Reported prices at a block end; checked against oracle_prices; price_path rows."""
        out = {}
        for (pool, asset), src in self.prices.sources.items():
            reported = self.prices.reported(pool, asset, ts)
            true = self.prices.true(pool, asset, ts, blk, reported)
            read = self.oracle_at.get((blk, pool, asset))
            if read is not None and read != reported:
                self.price_mismatches.append({"block_number": blk, "pool": pool, "asset": asset,
                                              "recomputed": reported, "oracle": read})
            out[(pool, asset)] = reported
            if blk >= self.inputs.from_block:
                self.price_rows.append({
                    "market": self.market_of[pool], "pool": pool, "asset": asset, "symbol": src.symbol,
                    "block_number": blk, "timestamp": ts, "reported_price": reported, "true_price": true,
                    "oracle_price": read,
                })
        return out

    def _on_liquidation(self, r: dict, blk: int, tx: int, after: int) -> None:
        pool, user = r["address"], r["user"]
        self.liquidated.add((pool, user))
        self._checkpoint("liquidation", blk, tx, None if after < 0 else after, forced={pool: {user}}, liquidation=r)

    def _checkpoint(self, kind: str, blk: int, tx: int | None, after: int | None, *, forced: dict[str, set[str]],
                    liquidation: dict | None = None) -> None:
        ts = self._ts(blk)
        cp = Checkpoint(len(self.checkpoints), kind, blk, tx, after, ts)
        self.checkpoints.append(cp)
        for pool in self.pools:
            self._evaluate_pool(cp, pool, forced.get(pool, set()), liquidation if liquidation and
                                liquidation["address"] == pool else None)

    def _evaluate_pool(self, cp: Checkpoint, pool: str, forced: set[str], liquidation: dict | None) -> None:
        ts, rev = cp.timestamp, self.revisions[pool]
        reserves = self._reserves_at(pool, rev, ts)
        reported, true = self.prices.prices(pool, ts, cp.block_number)
        near = self._screen(pool, reserves, reported, true, ts)
        users = self.mirror.pools[pool].users
        market = self.market_of[pool]
        fast = None
        if self.exact_path == "vector" and len(near) >= self.vector_min_users:
            got = self._fast_values(pool, near, reserves, reported, true)
            if len(got):
                d_r = got.values[3]
                # forced users (verdicts) take the scalar path below, which also gives their per-reserve breakdown
                keep = d_r != 0
                forced_ids = [i for i in (users.find(u) for u in forced) if i is not None]
                if forced_ids:
                    keep &= ~np.isin(got.ids, np.array(forced_ids, dtype=np.int64))
                fast = got.select(keep)
        n_fast = 0 if fast is None else len(fast)
        wrongly = set()
        fast_wrongly = None
        if n_fast:
            hf_r, hf_t = fast.values[0], fast.values[1]
            fast_wrongly = (hf_r < HEALTH_FACTOR_LIQUIDATION_THRESHOLD) & (HEALTH_FACTOR_LIQUIDATION_THRESHOLD <= hf_t)
            for j in np.nonzero(fast_wrongly)[0].tolist():
                # the at-risk list: its totals are the vector path's; the per-reserve breakdown, when the
                # list needs it (a new lowest health factor), from the scalar reference
                user = users[int(fast.ids[j])]
                wrongly.add(user)
                self._note_risk(cp, pool, user, int(fast.values[2][j]), int(fast.values[3][j]), int(hf_r[j]),
                                int(hf_t[j]), lambda user=user: self._breakdown(pool, user, rev, reserves, reported,
                                                                                true, ts))
        self.exact += n_fast
        self.fast += n_fast
        if n_fast:  # the screened users the vector path did not settle (its users are among them)
            settled = np.zeros(len(users), dtype=bool)
            settled[fast.ids] = True
            rest = near[~settled[near]]
        else:
            rest = near
        candidates = set(forced)
        candidates.update(users[i] for i in rest.tolist())
        rows: list[dict] = []
        for user in sorted(candidates):
            here = liquidation is not None and liquidation["user"] == user
            positions = self.book.positions(pool, user)
            if not positions and user not in forced:
                continue
            emode = self.reserves.category(pool, self.book.emode(pool, user))
            acc_r, acc_t = self._value(pool, user, rev, positions, reserves, reported, true, emode, ts)
            if acc_r.total_debt_base == 0 and user not in forced:
                continue
            is_wrong = acc_r.health_factor_wad < HEALTH_FACTOR_LIQUIDATION_THRESHOLD <= acc_t.health_factor_wad
            rows.append({
                "user": user, "emode_category": self.book.emode(pool, user),
                "hf_reported": acc_r.health_factor_wad, "hf_true": acc_t.health_factor_wad,
                "collateral_base_reported": acc_r.total_collateral_base, "debt_base_reported": acc_r.total_debt_base,
                "collateral_base_true": acc_t.total_collateral_base, "debt_base_true": acc_t.total_debt_base,
                "wrongly_eligible": is_wrong, "liquidated_here": here,
            })
            if is_wrong:
                wrongly.add(user)
                self._note_risk(cp, pool, user, acc_r.total_collateral_base, acc_r.total_debt_base,
                                acc_r.health_factor_wad, acc_t.health_factor_wad,
                                lambda positions=positions, emode=emode, acc_r=acc_r: (
                                    positions, reserves, reported, true, emode, acc_r))
            if here:
                self._verdict(cp, pool, liquidation, positions, reserves, reported, true, emode, acc_r, acc_t)
        self.health_rows.add({"market": market, "pool": pool, **_cp_columns(cp)},
                             users.as_bytes(fast.ids) if n_fast else None, fast, rows, fast_wrongly=fast_wrongly)
        for (p, user), state in self.risk.items():
            if p == pool and state["open_since"] is not None and user not in wrongly:
                state["seconds"] += ts - state["open_since"]
                state["open_since"] = None

    def _fast_values(self, pool: str, near: np.ndarray, reserves: Mapping[str, ReserveState],
                     reported: Mapping[str, int], true: Mapping[str, int]) -> FastValues:
        """The screened users the vector path values exactly (:mod:`replay.vector_valuation`): their
        numbers, eMode categories, and collateral, debt and health factor under the reported and the
        true prices. A user it cannot prove exact is absent (the caller values it with the scalar
        reference)."""
        mirror = self.mirror.pools[pool]
        if len(near) == 0:
            return _NO_FAST
        assets = mirror.assets
        if any(a not in reserves or a not in reported or a not in true for a in assets):
            return _NO_FAST
        layout = self._user_rows(pool)
        tables = self._exact_tables(pool)
        if tables is None:
            return _NO_FAST
        lt_table, counts_vec, usable = tables
        order, row_starts, row_counts = layout
        cat = mirror.emode[near]
        known = (cat >= 0) & (cat < len(usable))
        ids = near[known]
        ids = ids[usable[cat[known]] & (row_counts[ids] > 0)]
        if len(ids) == 0:
            return _NO_FAST
        seg_counts = row_counts[ids]
        rows = order[segment_rows(row_starts[ids], seg_counts)]
        seg_starts = np.cumsum(seg_counts) - seg_counts
        row_asset = mirror.row_asset[rows]
        row_cat = np.repeat(mirror.emode[ids], seg_counts)
        common = dict(
            scaled_a=mirror.scaled_a[rows], scaled_d=mirror.scaled_d[rows],
            scaled_a_rest=mirror.scaled_a_rest[rows], scaled_d_rest=mirror.scaled_d_rest[rows],
            counts=mirror.collateral[rows] & counts_vec[row_asset], row_asset=row_asset,
            row_lt=lt_table[row_cat, row_asset], seg_starts=seg_starts, seg_counts=seg_counts,
            income=[reserves[a].liquidity_index_ray for a in assets],
            debt_index=[reserves[a].variable_borrow_index_ray for a in assets],
            decimals=[reserves[a].decimals for a in assets])
        rules = rules_for(self.revisions[pool])
        price_r = [reported[a] for a in assets]
        price_t = [true[a] for a in assets]
        got_r = account_sums(rules, prices=price_r, **common)
        got_t = got_r if price_t == price_r else account_sums(rules, prices=price_t, **common)
        sure = np.nonzero(got_r.exact & got_t.exact)[0]
        ids = ids[sure]
        return FastValues(ids, mirror.emode[ids], (
            got_r.health_factor_wad[sure], got_t.health_factor_wad[sure], got_r.collateral_base[sure],
            got_r.debt_base[sure], got_t.collateral_base[sure], got_t.debt_base[sure]))

    def _user_rows(self, pool: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The mirror's rows grouped by user (``order``, first position and count per user), cached
        until the book changes."""
        mirror = self.mirror.pools[pool]
        cached = self._rows_cache.get(pool)
        if cached is not None and cached[0] == mirror.version:
            return cached[1]
        n = mirror.n_rows
        order = np.argsort(mirror.row_user[:n], kind="stable")
        counts = np.bincount(mirror.row_user[:n], minlength=len(mirror.users)).astype(np.int64)
        starts = np.cumsum(counts) - counts
        out = (order, starts, counts)
        self._rows_cache[pool] = (mirror.version, out)
        return out

    def _exact_tables(self, pool: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Per eMode category and asset: the liquidation threshold (int bps) a collateral takes; per
        asset: whether a flagged collateral counts (the revision's rule on the reserve LT); per
        category: whether the fast path may value its users (a known category without its own price
        source). Cached on the reserve book's version."""
        version = self.reserves.version
        cached = self._exact_cache.get(pool)
        if cached is not None and cached[0] == version:
            return cached[1]
        rules = rules_for(self.revisions[pool])
        assets = self.mirror.pools[pool].assets
        book = self.reserves.reserves[pool]
        if any(a not in book for a in assets):
            self._exact_cache[pool] = (version, None)
            return None
        categories = self.reserves.emode[pool]
        size = max([0, *categories]) + 1
        lt = np.zeros((size, len(assets)), dtype=np.int64)
        usable = np.zeros(size, dtype=bool)
        usable[0] = True
        for c in range(size):
            cat = categories.get(c) if c else None
            if c and (cat is None or (rules.emode_price_source and cat.price_source is not None)):
                continue
            usable[c] = True
            for i, a in enumerate(assets):
                lt[c, i] = get_user_reserve_liquidation_threshold(rules, book[a], cat)
        counts = np.array([not (rules.collateral_requires_reserve_liquidation_threshold
                                and book[a].liquidation_threshold_bps == 0) for a in assets], dtype=bool)
        out = (lt, counts, usable)
        self._exact_cache[pool] = (version, out)
        return out

    def _value(self, pool, user, rev, positions, reserves, reported, true, emode, ts):
        """Exact account data under both prices; reused while every input is the same (within a block,
        most positions do not change between one liquidation checkpoint and the next)."""
        key = (positions, emode, tuple((p.asset, reported[p.asset], true[p.asset], reserves[p.asset])
                                              for p in positions))
        memo = self._memo.get((pool, user))
        if memo is not None and memo[0] == key:
            return memo[1], memo[2]
        acc_r = health_factor(rev, positions, reserves, reported, emode, ts)
        acc_t = health_factor(rev, positions, reserves, true, emode, ts)
        self.exact += 1
        self._memo[(pool, user)] = (key, acc_r, acc_t)
        return acc_r, acc_t

    def _reserves_at(self, pool: str, rev: Revision, ts: int) -> dict[str, ReserveState]:
        """The pool's reserves as of ``ts``: indexes replaced by ``getNormalizedIncome/Debt(ts)`` and
        ``lastUpdateTimestamp = ts`` (rates zeroed: at their own timestamp nothing reads them). The
        protocol's math reads exactly these values at ``ts``, so valuations are unchanged; they just
        skip recomputing the interest for every account, and equal inputs compare equal."""
        key = (ts, self.reserves.version, self.reserves.updates)
        cached = self._reserves_cache.get(pool)
        if cached is not None and cached[0] == key:
            return cached[1]
        out = {a: replace(r, liquidity_index_ray=get_normalized_income(r, ts),
                          variable_borrow_index_ray=get_normalized_debt(rev, r, ts), last_update_timestamp=ts,
                          liquidity_rate_ray=0, variable_borrow_rate_ray=0)
               for a, r in self.reserves.reserves[pool].items()}
        self._reserves_cache[pool] = (key, out)
        return out

    def _screen(self, pool: str, reserves: Mapping[str, ReserveState], reported: Mapping[str, int],
                true: Mapping[str, int], ts: int) -> np.ndarray:
        """Users of ``pool`` (their numbers in the pool's float mirror) whose float health factor under
        either price is below the band."""
        mirror = self.mirror.pools[pool]
        if mirror.n_rows == 0:
            return np.zeros(0, dtype=np.int64)
        rev = self.revisions[pool]
        assets = mirror.assets
        income = np.array([get_normalized_income(reserves[a], ts) / RAY for a in assets])
        debt_index = np.array([get_normalized_debt(rev, reserves[a], ts) / RAY for a in assets])
        unit = np.array([float(reserves[a].asset_unit) for a in assets])
        prices = [np.array([float(p[a]) for a in assets]) for p in (reported, true)]
        near, covered = mirror.screen_below(self.health_band, income, debt_index, unit, prices, self._lt_table(pool))
        self.screened += covered
        return np.sort(near)

    def _lt_table(self, pool: str) -> np.ndarray:
        version = self.reserves.version
        cached = self._lt_cache.get(pool)
        if cached and cached[0] == version:
            return cached[1]
        rules = rules_for(self.revisions[pool])
        assets = self.mirror.pools[pool].assets
        categories = self.reserves.emode[pool]
        size = max([0, *categories]) + 1
        table = np.zeros((256 if size <= 256 else size, len(assets)))
        for c in range(table.shape[0]):
            cat = categories.get(c) if c else None
            for i, a in enumerate(assets):
                reserve = self.reserves.reserves[pool][a]
                lt = get_user_reserve_liquidation_threshold(rules, reserve, cat)
                if rules.collateral_requires_reserve_liquidation_threshold and reserve.liquidation_threshold_bps == 0:
                    lt = 0
                table[c, i] = lt
        self._lt_cache[pool] = (version, table)
        return table

    # ---- verdicts

    def _verdict(self, cp, pool, liq, positions, reserves, reported, true, emode, acc_r, acc_t) -> None:
        rev = self.revisions[pool]
        user, liquidator = liq["user"], liq["liquidator"]
        coll, debt = liq["collateral_asset"], liq["debt_asset"]
        d, c = int(liq["debt_to_cover"]), int(liq["liquidated_collateral_amount"])
        receive = bool(liq["receive_a_token"])
        common = dict(collateral_asset=coll, debt_asset=debt, receive_a_token=receive,
                      liquidator_is_borrower=liquidator == user)
        sim = execute_liquidation_call(rev, positions, reserves, reported, emode, cp.timestamp,
                                       debt_to_cover=d, **common)
        matches = (not sim.reverted and sim.actual_debt_to_liquidate == d and sim.liquidated_collateral_amount == c)
        fee = self._fee_from_logs(pool, liq, cp)
        fee_source = "transfer_log"
        if fee is None:
            fee, fee_source = (0 if sim.reverted else sim.protocol_fee_transferred), "replay"
        max_r, res_r = max_liquidatable_debt(rev, positions, reserves, reported, emode, cp.timestamp, **common)
        max_t, _ = max_liquidatable_debt(rev, positions, reserves, true, emode, cp.timestamp, **common)
        pr, pt, qr, qt = reported[coll], true[coll], reported[debt], true[debt]
        cu, du = reserves[coll].asset_unit, reserves[debt].asset_unit
        eth = true.get(self.eth_asset) if self.eth_asset else None
        parts = loss_parts(c, fee, d, pr, pt, qr, qt, cu, du)
        row = {
            "market": self.market_of[pool], "pool": pool, "block_number": int(liq["block_number"]),
            "transaction_index": int(liq["transaction_index"]), "log_index": int(liq["log_index"]),
            "transaction_hash": liq["transaction_hash"], "timestamp": cp.timestamp, "checkpoint": cp.ordinal,
            "user": user, "liquidator": liquidator, "collateral_asset": coll,
            "collateral_symbol": self.symbol.get((pool, coll)), "debt_asset": debt,
            "debt_symbol": self.symbol.get((pool, debt)), "debt_to_cover": d, "liquidated_collateral_amount": c,
            "protocol_fee_amount": fee, "protocol_fee_source": fee_source, "collateral_seized": c + fee,
            "receive_a_token": receive, "emode_category": emode.id if emode else 0,
            "hf_reported": acc_r.health_factor_wad, "hf_true": acc_t.health_factor_wad,
            "verdict": classify(acc_r.health_factor_wad, acc_t.health_factor_wad),
            "collateral_price_reported": pr, "collateral_price_true": pt, "debt_price_reported": qr,
            "debt_price_true": qt, "eth_price_true": eth,
            "max_liquidatable_debt_reported": max_r, "max_liquidatable_debt_true": max_t,
            "close_factor_bps_reported": res_r.close_factor_bps or None,
            "over_liquidated_debt": max(0, d - max_t), "replay_matches_log": matches,
        }
        for name in ("oracle_loss", "bonus_loss", "fee_oracle_loss", "borrower_loss"):
            base, in_coll, in_eth = to_units(getattr(parts, name), collateral_unit=cu, collateral_price=pt, eth_price=eth)
            row[f"{name}_base"], row[f"{name}_collateral"], row[f"{name}_eth_wei"] = base, in_coll, in_eth
        for name in ("liquidator_gain", "liquidator_oracle_gain", "liquidator_bonus_gain", "collateral_seized_true",
                     "debt_repaid_true"):
            base, _, in_eth = to_units(getattr(parts, name), eth_price=eth)
            row[f"_{name}_base"], row[f"_{name}_eth_wei"] = base, in_eth
        self.verdict_rows.append(row)

    def _fee_from_logs(self, pool: str, liq: dict, cp: Checkpoint) -> int | None:
        """The protocol fee: collateral aToken ``Transfer``s from the borrower to anyone but the
        liquidator and the zero address, between the checkpoint and the ``LiquidationCall``."""
        a_token = self.a_token_of.get((pool, liq["collateral_asset"]))
        lo = -1 if cp.after_log_index is None else cp.after_log_index
        found = None
        for t in self.inputs.liquidation_transfers:
            if (t["transaction_hash"] == liq["transaction_hash"] and t["address"] == a_token
                    and lo < int(t["log_index"]) < int(liq["log_index"]) and t["from_address"] == liq["user"]
                    and t["to_address"] not in (ZERO, liq["liquidator"])):
                found = (found or 0) + int(t["value"])
        return found

    # ---- at risk

    def _breakdown(self, pool, user, rev, reserves, reported, true, ts):
        """What ``_note_risk`` needs to price a liquidation of ``user``: its positions, the prices and
        the exact account data under the reported prices with its per-reserve breakdown."""
        positions = self.book.positions(pool, user)
        emode = self.reserves.category(pool, self.book.emode(pool, user))
        acc_r, _ = self._value(pool, user, rev, positions, reserves, reported, true, emode, ts)
        return positions, reserves, reported, true, emode, acc_r

    def _note_risk(self, cp, pool, user, collateral_r: int, debt_r: int, hf_r: int, hf_t: int, exact) -> None:
        """A wrongly eligible user at ``cp``: its totals and health factors under the reported prices
        (and its true health factor); ``exact()`` gives ``(positions, reserves, reported, true, emode,
        account data)`` and is called only when a new lowest health factor needs the breakdown."""
        state = self.risk.setdefault((pool, user), {
            "open_since": None, "seconds": 0, "checkpoints": 0, "first_block": cp.block_number,
            "first_timestamp": cp.timestamp, "min_hf": None, "hf_true_at_min": None, "max_coll": 0, "max_debt": 0,
            "exposure": None,
        })
        if state["open_since"] is None:
            state["open_since"] = cp.timestamp
        state["checkpoints"] += 1
        state["last_block"], state["last_timestamp"] = cp.block_number, cp.timestamp
        state["max_coll"] = max(state["max_coll"], collateral_r)
        state["max_debt"] = max(state["max_debt"], debt_r)
        if state["min_hf"] is not None and hf_r >= state["min_hf"]:
            return
        state["min_hf"], state["hf_true_at_min"] = hf_r, hf_t
        state["exposure"] = None
        if (pool, user) in self.to_be_liquidated:
            return  # not reported in at_risk: no need to price a hypothetical liquidation
        positions, reserves, reported, true, emode, acc_r = exact()
        coll = max((v for v in acc_r.reserves if v.counts_as_collateral), key=lambda v: v.collateral_value_base,
                   default=None)
        debt = max((v for v in acc_r.reserves if v.debt_value_base), key=lambda v: v.debt_value_base, default=None)
        if coll is None or debt is None:
            return
        rev = self.revisions[pool]
        amount, res = max_liquidatable_debt(rev, positions, reserves, reported, emode, cp.timestamp,
                                            collateral_asset=coll.asset, debt_asset=debt.asset)
        if amount == 0 or res.reverted:
            return
        eth = true.get(self.eth_asset) if self.eth_asset else None
        parts = loss_parts(res.liquidated_collateral_amount, res.protocol_fee_transferred, res.actual_debt_to_liquidate,
                           reported[coll.asset], true[coll.asset], reported[debt.asset], true[debt.asset],
                           reserves[coll.asset].asset_unit, reserves[debt.asset].asset_unit)
        base, _, in_eth = to_units(parts.borrower_loss, eth_price=eth)
        state["exposure"] = {
            "exposed_block": cp.block_number, "exposed_collateral_asset": coll.asset,
            "exposed_debt_asset": debt.asset, "exposed_debt_to_cover": res.actual_debt_to_liquidate,
            "exposed_collateral_seized": res.collateral_seized, "exposed_loss_base": base,
            "exposed_loss_eth_wei": in_eth,
        }

    def _close_risk(self, end_ts: int) -> None:
        for state in self.risk.values():
            if state["open_since"] is not None:
                state["seconds"] += end_ts - state["open_since"]
                state["open_since"] = None

    # ---- aggregates

    def at_risk_rows(self) -> list[dict]:
        return at_risk_rows(self.risk, self.liquidated, self.market_of)

    def borrower_rows(self) -> list[dict]:
        return borrower_rows(self.verdict_rows, self.market_of)

    def liquidator_rows(self) -> list[dict]:
        return liquidator_rows(self.verdict_rows, self.market_of)


_NO_FAST = FastValues(np.zeros(0, np.int64), np.zeros(0, np.int64), tuple(np.zeros(0, np.int64) for _ in range(6)))


def _opt_int(value) -> int | None:
    return None if value is None else int(value)


def _cp_columns(cp: Checkpoint) -> dict:
    return {"checkpoint": cp.ordinal, "checkpoint_kind": cp.kind, "block_number": cp.block_number,
            "transaction_index": cp.transaction_index, "after_log_index": cp.after_log_index,
            "timestamp": cp.timestamp}

