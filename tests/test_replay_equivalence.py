"""The fast exact path gives the same numbers as the scalar reference, to the wei.

- ``replay.vector_valuation.account_sums`` against ``aave_math.calculate_user_account_data`` on
  randomized markets (hypothesis: revisions, reserves, indexes, prices, balances of every size,
  flags, eMode): every user it calls exact has the reference's collateral, debt and health factor;
- the whole replay (health rows, verdicts, at-risk rows, every table) with the fast path and with
  the scalar reference only, on randomized synthetic markets and on the devchain incident's
  warehouse.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postmortem.replay.aave_math import RAY, EModeCategory, ReserveState, UserReservePosition, rules_for
from postmortem.replay.aave_math.generic_logic import (
    calculate_user_account_data,
    counts_as_collateral,
    get_user_reserve_liquidation_threshold,
)
from postmortem.replay.vector_valuation import _rest, account_sums

REPO = Path(__file__).resolve().parent.parent
REVISIONS = ["3.0", "3.3", "3.4", "3.6"]
MAGNITUDES = [0, 10**3, 10**6, 10**9, 10**15, 10**18, 10**21, 10**24, 10**27, 2**100]


@st.composite
def markets(draw):
    revision = draw(st.sampled_from(REVISIONS))
    k = draw(st.integers(1, 5))
    reserves = []
    for i in range(k):
        lt = draw(st.sampled_from([0, 5000, 7800, 8250, 9500, 10000]))
        reserves.append(ReserveState(
            asset=f"0x{i:040x}", id=i, decimals=draw(st.sampled_from([0, 2, 6, 8, 18])), ltv_bps=max(0, lt - 300),
            liquidation_threshold_bps=lt, liquidation_bonus_bps=10500, liquidation_protocol_fee_bps=1000,
            liquidity_index_ray=draw(st.integers(RAY, 3 * RAY)), variable_borrow_index_ray=draw(st.integers(RAY, 3 * RAY)),
            liquidity_rate_ray=0, variable_borrow_rate_ray=0, last_update_timestamp=1_000,
            emode_category_id=draw(st.sampled_from([0, 1]))))
    prices = {r.asset: draw(st.one_of(st.integers(1, 10**13), st.sampled_from([10**8, 2 * 10**8, 1])))
              for r in reserves}
    emode = EModeCategory(1, 9300, draw(st.sampled_from([9500, 9700])), 10100,
                          collateral_bitmap=draw(st.integers(0, 2**k - 1)))
    users = []
    for _ in range(draw(st.integers(1, 12))):
        positions = []
        for r in reserves:
            if not draw(st.booleans()):
                continue
            size = draw(st.sampled_from(MAGNITUDES))
            a = draw(st.integers(0, size)) if size else 0
            size = draw(st.sampled_from(MAGNITUDES))
            d = draw(st.integers(0, size)) if size else 0
            positions.append(UserReservePosition(asset=r.asset, scaled_a_token_balance=a, scaled_variable_debt=d,
                                                 using_as_collateral=draw(st.booleans()), borrowing=d != 0))
        if positions:
            users.append((tuple(positions), emode if draw(st.booleans()) else None))
    return revision, reserves, prices, users


def _fast(revision, reserves, prices, users, rest=True):
    rules = rules_for(revision)
    index = {r.asset: i for i, r in enumerate(reserves)}
    rows = [(p, emode) for positions, emode in users for p in positions]
    seg_counts = np.array([len(positions) for positions, _ in users], dtype=np.int64)
    seg_starts = (np.cumsum(seg_counts) - seg_counts).astype(np.int64)
    by_asset = {r.asset: r for r in reserves}
    return account_sums(
        rules,
        scaled_a=np.array([float(p.scaled_a_token_balance) for p, _ in rows]),
        scaled_d=np.array([float(p.scaled_variable_debt) for p, _ in rows]),
        scaled_a_rest=np.array([float(p.scaled_a_token_balance - int(float(p.scaled_a_token_balance)))
                                for p, _ in rows]) if rest else None,
        scaled_d_rest=np.array([float(p.scaled_variable_debt - int(float(p.scaled_variable_debt)))
                                for p, _ in rows]) if rest else None,
        counts=np.array([counts_as_collateral(rules, by_asset[p.asset], p) for p, _ in rows], dtype=bool),
        row_asset=np.array([index[p.asset] for p, _ in rows], dtype=np.int64),
        row_lt=np.array([get_user_reserve_liquidation_threshold(rules, by_asset[p.asset], e) for p, e in rows],
                        dtype=np.int64),
        seg_starts=seg_starts, seg_counts=seg_counts,
        income=[r.liquidity_index_ray for r in reserves], debt_index=[r.variable_borrow_index_ray for r in reserves],
        prices=[prices[r.asset] for r in reserves], decimals=[r.decimals for r in reserves])



@settings(max_examples=2000, deadline=None)
@given(num=st.integers(1, 10**80), den_exp=st.integers(0, 54), den_mul=st.sampled_from([1, 3, 7, 10**27]))
def test_the_remainder_in_integers_is_the_fraction_remainder(num, den_exp, den_mul):
    """The per-asset low parts of the double-double factors, computed in integers, are the floats
    the proof takes (the correctly rounded ``num / den - fl(num / den)``)."""
    from fractions import Fraction

    den = 10**den_exp * den_mul
    hi = num / den
    assert _rest(num, den, hi) == float(Fraction(num, den) - Fraction(hi))

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(markets(), st.booleans())
def test_vector_valuation_equals_reference_on_random_markets(market, rest):
    revision, reserves, prices, users = market
    if revision == "3.0":  # v3.0: a reserve belongs to an eMode category by its configuration
        users = [(p, EModeCategory(1, e.ltv_bps, e.liquidation_threshold_bps, 10100) if e else None) for p, e in users]
    got = _fast(revision, reserves, prices, users, rest)
    for i, (positions, emode) in enumerate(users):
        if not got.exact[i]:
            continue
        ref = calculate_user_account_data(revision, positions, reserves, prices, emode, 1_000)
        assert (int(got.collateral_base[i]), int(got.debt_base[i]), int(got.health_factor_wad[i])) == (
            ref.total_collateral_base, ref.total_debt_base, ref.health_factor_wad), (revision, positions, emode)


@pytest.mark.parametrize("median_usd", [5_000, 5_000_000])
def test_vector_valuation_is_exact_for_ordinary_positions(median_usd):
    """Not vacuous: ordinary positions (a few thousand dollars, health factor near 1) and whales
    (millions) are proven exact by the fast path for nearly every user, and agree with the reference."""
    rng = np.random.default_rng(7)
    for revision in REVISIONS:
        reserves = [ReserveState(asset=f"0x{i:040x}", id=i, decimals=d, ltv_bps=7500, liquidation_threshold_bps=8000,
                                 liquidation_bonus_bps=10500, liquidation_protocol_fee_bps=1000,
                                 liquidity_index_ray=RAY + int(rng.integers(0, 10**17)) * 10**9 + int(rng.integers(0, 10**9)),
                                 variable_borrow_index_ray=RAY + int(rng.integers(0, 10**17)) * 10**9 + int(rng.integers(0, 10**9)), liquidity_rate_ray=0,
                                 variable_borrow_rate_ray=0, last_update_timestamp=1)
                    for i, d in enumerate([18, 6, 8])]
        prices = {reserves[0].asset: 250_012_345_678, reserves[1].asset: 100_000_000, reserves[2].asset: 6_000_012_345_678}
        users = []
        for _ in range(2000):
            c = int(rng.integers(0, 3))
            dd = (c + 1) % 3
            coll_usd = float(rng.lognormal(np.log(median_usd), 1.0))
            debt_usd = coll_usd * 0.8 / float(rng.uniform(0.9, 1.3))
            unit = [10**18, 10**6, 10**8]
            px = [2500.12345678, 1.0, 60000.12345678]
            users.append(((UserReservePosition(reserves[c].asset, int(coll_usd / px[c] * unit[c]), 0, True, False),
                           UserReservePosition(reserves[dd].asset, 0, int(debt_usd / px[dd] * unit[dd]), False, True)),
                          None))
        users = [(tuple(sorted(p, key=lambda x: x.asset)), e) for p, e in users]
        got = _fast(revision, reserves, prices, users)
        assert got.exact.mean() > 0.99, (revision, got.exact.mean())
        for i in np.nonzero(got.exact)[0][:300]:
            ref = calculate_user_account_data(revision, users[i][0], reserves, prices, None, 1)
            assert (int(got.collateral_base[i]), int(got.debt_base[i]), int(got.health_factor_wad[i])) == (
                ref.total_collateral_base, ref.total_debt_base, ref.health_factor_wad)


# --- the whole replay: the fast path against the scalar reference ------------------------------------


def _replay_both(inputs, models, *, eth_asset, health_band):
    from postmortem.replay.replayer import Replayer

    out = []
    for path in ("vector", "scalar"):
        r = Replayer(inputs, models, eth_asset=eth_asset, health_band=health_band, exact_path=path)
        r.vector_min_users = 1  # these populations are small: take the vector path at every checkpoint
        r.run()
        out.append(r)
    return out


def _assert_same_tables(fast, ref):
    assert fast.health_rows == ref.health_rows
    assert fast.verdict_rows == ref.verdict_rows
    assert fast.at_risk_rows() == ref.at_risk_rows()
    assert fast.borrower_rows() == ref.borrower_rows()
    assert fast.liquidator_rows() == ref.liquidator_rows()
    assert fast.price_rows == ref.price_rows
    assert [cp.__dict__ for cp in fast.checkpoints] == [cp.__dict__ for cp in ref.checkpoints]


def _synthetic(seed, revision, drop, positions=300, checkpoints=10):
    """A random synthetic market (``benchmarks/synthetic.py``) under ``revision``; with ``drop``, the
    reported price of one asset falls by that factor after the start block (an oracle error), and its
    true price stays at the start price."""
    from dataclasses import replace as dc_replace

    sys.path.insert(0, str(REPO))
    from benchmarks.synthetic import ASSETS, SYM, synthetic_inputs
    from postmortem.replay.prices import TrueModel

    inputs = synthetic_inputs(positions, checkpoints, seed=seed)
    inputs = dc_replace(inputs, markets=[{**m, "aave_revision": revision} for m in inputs.markets])
    models = {}
    if drop is not None:
        symbol, factor = drop
        i = SYM[symbol]
        assert ASSETS[i].symbol == symbol
        feed = inputs.reserves[i]["price_source"]
        asset = inputs.reserves[i]["asset"]
        start = inputs.from_block - 1
        models[symbol] = TrueModel("constant", price=int(inputs.feed_answers[i]["answer"]))
        feed_answers = [{**r, "answer": int(r["answer"] * factor)} if r["feed"] == feed and r["block_number"] > start
                        else r for r in inputs.feed_answers]
        oracle = [{**r, "price": int(r["price"] * factor)} if r["asset"] == asset and r["block_number"] > start
                  else r for r in inputs.oracle_prices]
        inputs = dc_replace(inputs, feed_answers=feed_answers, oracle_prices=oracle)
    return inputs, models


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), revision=st.sampled_from(REVISIONS), band=st.sampled_from([1.1, 1.3]),
       drop=st.sampled_from([None, ("wstETH", 0.85), ("WETH", 0.9), ("WBTC", 0.8), ("USDC", 0.97)]))
def test_replay_fast_equals_reference_on_random_synthetic_markets(seed, revision, band, drop):
    """Random populations (lognormal sizes up to 50M USD, eMode loopers, two-collateral users), a
    random price walk, a random revision, and an oracle error on one asset (reported below true):
    every health row, at-risk row and table is identical on both paths."""
    inputs, models = _synthetic(seed, revision, drop)
    fast, ref = _replay_both(inputs, models, eth_asset=None, health_band=band)
    _assert_same_tables(fast, ref)
    assert fast.health_rows, "the band catches nobody: the test would be vacuous"
    assert fast.fast > 0, "the fast path valued nobody"


def test_start_positions_by_columns_equal_row_by_row():
    """``positions_at_start`` as an Arrow table (loaded by columns, users materialized on first use)
    gives the same replay and the same final balances as the rows loaded one by one."""
    sys.path.insert(0, str(REPO))
    from benchmarks.synthetic import arrow_positions
    from dataclasses import replace as dc_replace
    from postmortem.replay.replayer import Replayer

    inputs, models = _synthetic(11, "3.6", ("wstETH", 0.85))
    table = arrow_positions(inputs.positions_at_start)
    assert table.num_rows == len(inputs.positions_at_start)
    by_rows = Replayer(inputs, models, eth_asset=None, health_band=1.2)
    by_rows.run()
    by_columns = Replayer(dc_replace(inputs, positions_at_start=table), models, eth_asset=None, health_band=1.2)
    assert len(by_columns.book.users) == len(by_rows.book.users)
    by_columns.run()
    _assert_same_tables(by_columns, by_rows)
    assert by_columns.book.scaled_balances() == by_rows.book.scaled_balances()
    assert by_columns.fast > 0 and any(h["wrongly_eligible"] for h in by_columns.health_rows)


@pytest.mark.parametrize("band", [1.02, 1.05, 1.1])
def test_incremental_screen_equals_full_screen(band, monkeypatch):
    """The screen that recomputes only the users its bound cannot rule out finds the same candidates
    as a full screen at every checkpoint (80 blocks of price walk plus an oracle error)."""
    from postmortem.replay import positions
    from postmortem.replay.replayer import Replayer

    inputs, models = _synthetic(3, "3.6", ("wstETH", 0.93), positions=3000, checkpoints=80)
    seen = {}
    original = Replayer._screen
    for incremental in (True, False):
        monkeypatch.setattr(positions._PoolMirror, "incremental_screen", incremental)
        screens = []

        def spy(self, *a, _screens=screens, **kw):
            out = original(self, *a, **kw)
            _screens.append(out.tolist())
            return out

        monkeypatch.setattr(Replayer, "_screen", spy)
        r = Replayer(inputs, models, eth_asset=None, health_band=band)
        r.run()
        seen[incremental] = (screens, r.health_rows)
        partial = sum(m.partial_screens for m in r.mirror.pools.values())
        assert (partial > 0) == incremental
    assert seen[True] == seen[False]
    assert sum(map(len, seen[True][0])) > 0


def test_replay_fast_equals_reference_with_wrongly_eligible_positions():
    """An oracle error that makes eMode loopers wrongly eligible: the at-risk list is not empty and
    is the same on both paths."""
    inputs, models = _synthetic(5, "3.6", ("wstETH", 0.85))
    fast, ref = _replay_both(inputs, models, eth_asset=None, health_band=1.1)
    _assert_same_tables(fast, ref)
    assert any(h["wrongly_eligible"] for h in fast.health_rows)
    assert fast.at_risk_rows()
    assert fast.fast > len(fast.health_rows) // 2


# --- every devchain scenario's warehouse ----------------------------------------------------------------


def _warehouse_inputs(dc, root, pools=None):
    from postmortem.ingest.pipeline import ingest
    from postmortem.replay.inputs import load_inputs

    s = dc.manifest["summary"]
    pools = pools or [m["pool"] for m in dc.addresses["markets"].values()]
    a, b = s["setup_end_block"] + 1, s["end_block"]
    ingest(dc.url, pools=pools, from_block=a, to_block=b, warehouse=root, progress=False, allow_unfinalized=True)
    return load_inputs(root, chain_id=dc.manifest["chain_id"], pools=pools, from_block=a, to_block=b)


def _check_scenario(inputs, overrides, eth_asset, root, bands=(1.1, 1000.0)):
    """Both paths agree, and the start positions read as Arrow (loaded by columns) give the same
    replay and final balances as the rows."""
    from dataclasses import replace as dc_replace

    from postmortem.replay.engine import resolve_true_models
    from postmortem.replay.replayer import Replayer
    from postmortem.replay.start_columns import read_start_positions

    models = resolve_true_models(None, overrides)
    if not isinstance(inputs.positions_at_start, list):  # load_inputs gives Arrow: the reference loads rows
        rows = [{k: int(v) if k.startswith("scaled_") and v is not None else v for k, v in r.items()}
                for r in inputs.positions_at_start.to_pylist()]
        inputs = dc_replace(inputs, positions_at_start=rows)
    for band in bands:  # the default band, and one that takes every position with debt
        fast, ref = _replay_both(inputs, models, eth_asset=eth_asset, health_band=band)
        _assert_same_tables(fast, ref)
        assert fast.health_rows and fast.fast > 0
        table = read_start_positions(root, chain_id=inputs.chain_id, pools=inputs.pools, block=inputs.from_block - 1)
        assert table.num_rows == len(inputs.positions_at_start) > 0
        columns = Replayer(dc_replace(inputs, positions_at_start=table), models, eth_asset=eth_asset, health_band=band)
        columns.vector_min_users = 1
        columns.run()
        _assert_same_tables(columns, fast)
        assert columns.book.scaled_balances() == fast.book.scaled_balances()
    return fast


def test_replay_fast_equals_reference_on_the_devchain_incident(incident_warehouse):
    from postmortem.replay.inputs import ingested_window, load_inputs

    inc = incident_warehouse["incident"]
    root = incident_warehouse["root"]
    window = ingested_window(root, inc.id)
    inputs = load_inputs(root, chain_id=inc.chain_id, pools=list(window["pools"].values()),
                         from_block=window["from_block"], to_block=window["to_block"])
    fast = _check_scenario(inputs, ["wstETH=uncapped"], inc.eth_asset, root)
    assert fast.verdict_rows and any(h["wrongly_eligible"] for h in fast.health_rows)


def test_replay_fast_equals_reference_on_the_small_scenario(small_chain, tmp_path):
    inputs = _warehouse_inputs(small_chain, tmp_path)
    _check_scenario(inputs, ["wstETH=uncapped"], None, tmp_path)


@pytest.mark.chain
def test_replay_fast_equals_reference_on_the_mixed_v30_scenario(tmp_path_factory):
    from conftest import _start

    dc = _start(tmp_path_factory, "mixed-v30")
    root = tmp_path_factory.mktemp("warehouse-mixed")
    try:
        inputs = _warehouse_inputs(dc, root)
    finally:
        dc.node.stop()
    _check_scenario(inputs, ["wstETH=uncapped"], None, root)


def test_start_columns_keep_row_by_row_semantics():
    """Repeated (user, asset) rows, an asset the pool does not list, a row without an asset (eMode
    only), a null balance: the columnar load gives the same book as the row-by-row load."""
    import pyarrow as pa

    from postmortem.replay.positions import FloatMirror, PositionBook, TokenRef

    pool, a1, a2, other = "0x" + "aa" * 20, "0x" + "01" * 20, "0x" + "02" * 20, "0x" + "03" * 20
    u1, u2, u3 = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "33" * 20
    rows = [
        {"pool": pool, "user": u2, "asset": a1, "emode_category": 1, "scaled_a_token_balance": 2**100 + 3,
         "scaled_variable_debt": 0, "using_as_collateral": True},
        {"pool": pool, "user": u1, "asset": a2, "emode_category": 0, "scaled_a_token_balance": 5,
         "scaled_variable_debt": 10**24 + 7, "using_as_collateral": False},
        {"pool": pool, "user": u1, "asset": other, "emode_category": 0, "scaled_a_token_balance": 9,
         "scaled_variable_debt": 0, "using_as_collateral": True},
        {"pool": pool, "user": u3, "asset": None, "emode_category": 2, "scaled_a_token_balance": None,
         "scaled_variable_debt": None, "using_as_collateral": None},
        {"pool": pool, "user": u2, "asset": a2, "emode_category": 1, "scaled_a_token_balance": 0,
         "scaled_variable_debt": 12345, "using_as_collateral": False},
    ]
    dec = pa.decimal128(38, 0)
    table = pa.table({k: pa.array([r[k] for r in rows], type=dec if k.startswith("scaled") else None)
                      for k in rows[0]})
    tokens = {"0x" + "a1" * 20: TokenRef(pool, a1, "a"), "0x" + "a2" * 20: TokenRef(pool, a2, "a")}

    def book(start):
        b = PositionBook(tokens, {pool: "3.6"}, mirror=FloatMirror({pool: [a1, a2]}))
        b.load_start(start)
        return b

    by_rows, by_columns = book(rows), book(table)
    assert len(by_columns.users) == len(by_rows.users) == 3
    for user in (u1, u2, u3):
        assert by_columns.positions(pool, user) == by_rows.positions(pool, user)
        assert by_columns.emode(pool, user) == by_rows.emode(pool, user)
    assert by_columns.scaled_balances() == by_rows.scaled_balances()
    m_rows, m_cols = by_rows.mirror.pools[pool], by_columns.mirror.pools[pool]
    key = lambda m: sorted((m.users[int(m.row_user[r])], int(m.row_asset[r]), float(m.scaled_a[r]), float(m.scaled_d[r]),
                            float(m.scaled_a_rest[r]), float(m.scaled_d_rest[r]), bool(m.collateral[r]))
                           for r in range(m.n_rows))
    assert key(m_cols) == key(m_rows)
    repeated = pa.concat_tables([table, table.slice(0, 1)])
    assert book(repeated).scaled_balances() == book(rows + rows[:1]).scaled_balances()
