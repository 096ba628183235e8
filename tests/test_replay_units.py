"""Unit tests of the replay stage on small synthetic inputs: position math from token events,
price models, verdicts and loss split, and the engine's checkpoint ordering.

The token contracts are emulated here from their Solidity (``ScaledBalanceTokenBase._mintScaled``
/ ``_burnScaled`` of aave-v3-origin 3.6 and ``@aave/core-v3`` 1.19.3), with the rounding written
out inline, so the tests do not lean on the code they test.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import EModeCategory, ReserveState, UserReservePosition, health_factor
from postmortem.replay.engine import run_replay
from postmortem.replay.inputs import ReplayInputs
from postmortem.replay.positions import PositionBook, PositionError, TokenRef, invert_token_balance, scaled_balance_after
from postmortem.replay.prices import (
    CappedRatioState, PriceBook, PriceSource, TrueModel, capped_ratio_price, parse_true_price_option,
    true_models_from_incident, uncapped_price,
)
from postmortem.replay.verdicts import classify, loss_parts, max_liquidatable_debt, to_units

RAY = 10**27
WAD = 10**18


# --- token emulation (from the Solidity) ---------------------------------------------------------

def mul_floor(a, b):
    return a * b // RAY


def mul_ceil(a, b):
    return -(-a * b // RAY)


def mul_half_up(a, b):
    return (a * b + RAY // 2) // RAY


def div_half_up(a, b):
    return (a * RAY + b // 2) // b


def v36_mint(balance_fn, scaled, amount_scaled, user_index, index):
    """aave-v3-origin 3.6 _mintScaled: returns the (event, value, balanceIncrease) it logs."""
    next_balance = balance_fn(amount_scaled + scaled, index)
    previous = balance_fn(scaled, user_index)
    increase = balance_fn(scaled, index) - previous
    return "mint", next_balance - previous, increase


def v36_burn(balance_fn, scaled, amount_scaled, user_index, index):
    """aave-v3-origin 3.6 _burnScaled: a Mint when the interest exceeds the amount burned."""
    next_balance = balance_fn(scaled - amount_scaled, index)
    previous = balance_fn(scaled, user_index)
    increase = balance_fn(scaled, index) - previous
    if next_balance > previous:
        return "mint", next_balance - previous, increase
    return "burn", previous - next_balance, increase


def v30_mint(scaled, amount, user_index, index):
    """@aave/core-v3 1.19.3 _mintScaled(amount): scaled += amount.rayDiv(index)."""
    increase = mul_half_up(scaled, index) - mul_half_up(scaled, user_index)
    return ("mint", amount + increase, increase), div_half_up(amount, index)


def v30_burn(scaled, amount, user_index, index):
    increase = mul_half_up(scaled, index) - mul_half_up(scaled, user_index)
    if increase > amount:
        return ("mint", increase - amount, increase), div_half_up(amount, index)
    return ("burn", amount - increase, increase), div_half_up(amount, index)


indexes = st.integers(RAY, 3 * RAY)
amounts = st.integers(1, 10**30)


@settings(max_examples=300, deadline=None)
@given(scaled=st.integers(0, 10**30), add=amounts, old=indexes, growth=st.integers(0, RAY // 5))
def test_v36_mint_events_give_back_the_scaled_amount(scaled, add, old, growth):
    index = old + growth
    for kind, fn in (("a", mul_floor), ("v", mul_ceil)):
        event, value, increase = v36_mint(fn, scaled, add, old, index)
        assert scaled_balance_after("3.6", kind, scaled, event, value, increase, index) == scaled + add


@settings(max_examples=300, deadline=None)
@given(scaled=st.integers(1, 10**30), fraction=st.fractions(0, 1), old=indexes, growth=st.integers(0, RAY // 5))
def test_v36_burn_events_give_back_the_scaled_amount(scaled, fraction, old, growth):
    index = old + growth
    burn = max(1, int(scaled * fraction))
    for kind, fn in (("a", mul_floor), ("v", mul_ceil)):
        event, value, increase = v36_burn(fn, scaled, burn, old, index)
        assert scaled_balance_after("3.6", kind, scaled, event, value, increase, index) == scaled - burn


@settings(max_examples=300, deadline=None)
@given(scaled=st.integers(0, 10**30), amount=amounts, old=indexes, growth=st.integers(0, RAY // 5),
       burn=st.booleans())
def test_v30_events_change_the_scaled_balance_by_ray_div(scaled, amount, old, growth, burn):
    index = old + growth
    if burn:
        amount = min(amount, mul_half_up(scaled, index))
        if div_half_up(amount, index) == 0:
            return
        (event, value, increase), delta = v30_burn(scaled, amount, old, index)
        expected = scaled - delta
    else:
        (event, value, increase), delta = v30_mint(scaled, amount, old, index)
        expected = scaled + delta
    for revision in ("3.0", "3.3", "3.4"):
        assert scaled_balance_after(revision, "a", scaled, event, value, increase, index) == expected


def test_interest_mint_of_a_transfer_changes_nothing():
    # AToken._transfer logs Mint(value == balanceIncrease) for the accrued interest only.
    assert scaled_balance_after("3.6", "a", 10**20, "mint", 123, 123, RAY + 5) == 10**20
    assert scaled_balance_after("3.0", "a", 10**20, "mint", 123, 123, RAY + 5) == 10**20


def test_invert_refuses_a_balance_no_scaled_amount_gives():
    # floor(s * 3) takes the values 0, 3, 6, ...: 4 is not one of them.
    with pytest.raises(PositionError):
        invert_token_balance(4, 3 * RAY, mul_floor)
    assert invert_token_balance(6, 3 * RAY, mul_floor) == 2


def _book():
    tokens = {"0xat": TokenRef("0xpool", "0xweth", "a"), "0xvt": TokenRef("0xpool", "0xweth", "v"),
              "0xat2": TokenRef("0xpool", "0xwst", "a")}
    book = PositionBook(tokens, {"0xpool": "3.6"})
    book.load_start([
        {"pool": "0xpool", "user": "0xu", "asset": "0xwst", "emode_category": 1,
         "scaled_a_token_balance": 10 * WAD, "scaled_variable_debt": 0, "using_as_collateral": True},
    ])
    return book


def test_position_book_follows_events():
    book = _book()
    # Borrow 5 WETH at index 1.1: scaled = rayDivCeil(5e18, 1.1e27), logged as a debt-token Mint.
    index = 11 * RAY // 10
    scaled_debt = -(-5 * WAD * RAY // index)
    event, value, increase = v36_mint(mul_ceil, 0, scaled_debt, 0, index)
    assert book.apply_token_event("0xvt", event, "0xu", value, increase, index)
    assert not book.apply_token_event("0xunknown", "mint", "0xu", 1, 0, RAY)
    book.apply_balance_transfer("0xat2", "0xu", "0xv", 4 * WAD)
    book.apply_collateral_toggle("0xpool", "0xwst", "0xv", True)
    book.apply_emode("0xpool", "0xv", 1)
    assert book.positions("0xpool", "0xu") == (
        UserReservePosition("0xweth", 0, scaled_debt, False, True),
        UserReservePosition("0xwst", 6 * WAD, 0, True, False),
    )
    assert book.positions("0xpool", "0xv") == (UserReservePosition("0xwst", 4 * WAD, 0, True, False),)
    assert book.emode("0xpool", "0xv") == 1
    # Repaying all of it clears the borrowing flag (no event carries it).
    event, value, increase = v36_burn(mul_ceil, scaled_debt, scaled_debt, index, index)
    book.apply_token_event("0xvt", event, "0xu", value, increase, index)
    assert [p.asset for p in book.positions("0xpool", "0xu")] == ["0xwst"]
    with pytest.raises(PositionError):
        book.apply_balance_transfer("0xat2", "0xv", "0xu", 5 * WAD)


# --- prices ----------------------------------------------------------------------------------------

def test_capped_ratio_price_by_hand():
    # cap = 1e18 + 1e12 * 1000 s = 1.001e18; live ratio 1.2e18 is above it.
    state = CappedRatioState(snapshot_ratio=WAD, snapshot_timestamp=0, max_ratio_growth_per_second=10**12,
                             ratio=12 * WAD // 10)
    assert state.is_capped(1000)
    assert capped_ratio_price(state, 2000 * 10**8, 1000) == 2002 * 10**8
    assert uncapped_price(state, 2000 * 10**8) == 2400 * 10**8
    state.ratio = 10005 * WAD // 10000  # below the cap: the live ratio counts
    assert capped_ratio_price(state, 2000 * 10**8, 1000) == 2001 * 10**8
    assert capped_ratio_price(state, 0, 1000) == 0  # a non-positive base answer gives 0, as on chain


def test_true_price_options(tmp_path):
    assert parse_true_price_option("wstETH=uncapped") == ("wstETH", TrueModel("uncapped", source="command line"))
    sym, model = parse_true_price_option("wstETH=constant:2345.67")
    assert (sym, model.model, model.price) == ("wstETH", "constant", 234_567_000_000)
    sym, model = parse_true_price_option("USDC=feed:0x5424384B256154046E9667dDFaaa5e550145215e")
    assert model.feed == "0x5424384b256154046e9667ddfaaa5e550145215e"
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("timestamp,price\n100,2000\n200,2100.5\n")
    _, model = parse_true_price_option(f"wstETH=csv:{csv_path}")
    assert model.series == (("timestamp", 100, 2000 * 10**8), ("timestamp", 200, 210_050_000_000))
    for bad in ("wstETH", "wstETH=", "wstETH=magic", "wstETH=constant:abc", "wstETH=constant:1.123456789",
                "wstETH=feed:0x12", "wstETH=uncapped:3", f"wstETH=csv:{tmp_path / 'missing.csv'}", "wstETH=constant"):
        with pytest.raises(PostmortemError) as info:
            parse_true_price_option(bad)
        assert "\n" not in str(info.value)
    declared = true_models_from_incident({"wstETH": {"model": "uncapped", "adapter": "0xe1d9"},
                                          "WETH": {"model": "constant", "price": "2000"}})
    assert declared["wstETH"].model == "uncapped" and declared["WETH"].price == 2000 * 10**8


def _price_book(models=None):
    sources = {
        ("0xpool", "0xwst"): PriceSource("0xpool", "0xwst", "wstETH", "0xcapo", "capped_ratio", "0xethusd"),
        ("0xpool", "0xweth"): PriceSource("0xpool", "0xweth", "WETH", "0xethusd", "feed"),
    }
    book = PriceBook(sources, models or {})
    book.set_capo_snapshot("0xcapo", WAD, 0, 10**12, 12 * WAD // 10, 2000 * 10**8, "0xethusd")
    return book


def test_price_book_models(tmp_path):
    book = _price_book({"wstETH": TrueModel("uncapped")})
    assert book.prices("0xpool", 1000, 10) == ({"0xwst": 2002 * 10**8, "0xweth": 2000 * 10**8},
                                               {"0xwst": 2400 * 10**8, "0xweth": 2000 * 10**8})
    book.apply_answer("0xethusd", 1900 * 10**8)  # an AnswerUpdated of the base feed moves both
    assert book.reported("0xpool", "0xwst", 1000) == 1900 * 1001 * 10**5
    book.apply_cap_parameters("0xcapo", 11 * WAD // 10, 1000, 0)  # a new snapshot, no growth
    assert book.reported("0xpool", "0xwst", 5000) == 1900 * 11 * 10**7
    series = TrueModel("csv", series=(("block_number", 5, 1), ("block_number", 8, 2)))
    book = _price_book({"wstETH": series, "WETH": TrueModel("constant", price=7)})
    assert book.true("0xpool", "0xwst", 0, 7) == 1 and book.true("0xpool", "0xwst", 0, 8) == 2
    assert book.true("0xpool", "0xweth", 0, 8) == 7
    with pytest.raises(PostmortemError):
        book.true("0xpool", "0xwst", 0, 4)  # before the series starts
    with pytest.raises(PostmortemError):
        _price_book({"WETH": TrueModel("uncapped")})  # WETH has no capped source
    with pytest.raises(PostmortemError):
        _price_book({"DOGE": TrueModel("constant", price=1)})


# --- verdicts and losses ---------------------------------------------------------------------------

def test_classify():
    assert classify(WAD - 1, WAD) == "wrongly_eligible"
    assert classify(WAD - 1, WAD - 1) == "eligible_anyway"
    assert classify(WAD, WAD + 5) == "anomaly"


def test_loss_parts_by_hand():
    # 100 collateral to the liquidator + 1 fee, for 150 debt; collateral 2000 -> 2050 true, debt 1300.
    p = loss_parts(100 * WAD, WAD, 150 * WAD, 2000 * 10**8, 2050 * 10**8, 1300 * 10**8, 1300 * 10**8, WAD, WAD)
    assert p.oracle_loss == 100 * 50 * 10**8
    assert p.fee_oracle_loss == 50 * 10**8
    assert p.bonus_loss == (101 * 2000 - 150 * 1300) * 10**8
    assert p.borrower_loss == p.oracle_loss + p.fee_oracle_loss + p.bonus_loss
    base, coll, eth = to_units(p.oracle_loss, collateral_unit=WAD, collateral_price=2050 * 10**8, eth_price=2000 * 10**8)
    assert base == 5000 * 10**8
    assert coll == 5000 * WAD // 2050  # floor(5000 / 2050 tokens)
    assert eth == 5 * WAD // 2
    assert to_units(Fraction(-1, 3)) == (-1, None, None)  # floored toward minus infinity


def _reserves():
    conf = dict(ltv_bps=8000, liquidation_threshold_bps=8300, liquidation_bonus_bps=10500,
                liquidation_protocol_fee_bps=1000, liquidity_rate_ray=0, variable_borrow_rate_ray=0,
                last_update_timestamp=0)
    return {
        "0xweth": ReserveState("0xweth", 0, 18, liquidity_index_ray=RAY, variable_borrow_index_ray=RAY, **conf),
        "0xwst": ReserveState("0xwst", 1, 18, liquidity_index_ray=RAY, variable_borrow_index_ray=RAY, **conf),
    }


def test_max_liquidatable_debt_close_factor_and_healthy():
    reserves = _reserves()
    positions = [UserReservePosition("0xwst", 100 * WAD, 0, True, False),
                 UserReservePosition("0xweth", 0, 100 * WAD, False, True)]
    prices = {"0xwst": 2000 * 10**8, "0xweth": 1650 * 10**8}  # HF = 2000*0.83/1650 = 1.006
    assert max_liquidatable_debt("3.6", positions, reserves, prices, None, 10, collateral_asset="0xwst",
                                 debt_asset="0xweth")[0] == 0
    prices["0xweth"] = 1700 * 10**8  # HF = 0.976 > 0.95 and both sides >= 2000 USD: half the total debt
    amount, res = max_liquidatable_debt("3.6", positions, reserves, prices, None, 10, collateral_asset="0xwst",
                                        debt_asset="0xweth")
    assert res.close_factor_bps == 5000 and amount == 50 * WAD
    prices["0xweth"] = 1800 * 10**8  # HF = 0.922 <= 0.95: all of it
    assert max_liquidatable_debt("3.6", positions, reserves, prices, None, 10, collateral_asset="0xwst",
                                 debt_asset="0xweth")[0] == 100 * WAD


# --- the engine on a synthetic market --------------------------------------------------------------

POOL, CONF = "0xpool", "0xconf"
WETH, WST = "0x" + "e" * 40, "0x" + "5" * 40
FEED, CAPO = "0x" + "f" * 40, "0x" + "c" * 40
USER, LIQ = "0x" + "1" * 40, "0x" + "2" * 40
ZERO_ADDRESS = "0x" + "0" * 40


def _configuration(ltv, lt, bonus, fee, decimals=18):
    return ltv | lt << 16 | bonus << 32 | decimals << 48 | 1 << 56 | fee << 152


def _inputs(events):
    snap = dict(snapshot_ratio=125 * WAD // 100, snapshot_timestamp=0, max_ratio_growth_per_second=0, ratio=12 * WAD // 10,
                base_answer=2000 * 10**8, adapter=CAPO, base_feed=FEED)
    reserve = dict(liquidity_index=RAY, variable_borrow_index=RAY, liquidity_rate=0, variable_borrow_rate=0,
                   last_update_timestamp=1000, pool=POOL, block_number=99)
    capo_after = {**snap, "snapshot_ratio": 119 * WAD // 100}
    return ReplayInputs(
        chain_id=1, from_block=100, to_block=101,
        markets=[{"market": "core", "pool": POOL, "pool_configurator": CONF, "aave_revision": "3.6",
                  "pool_revision": 10}],
        reserves=[
            {"pool": POOL, "asset": WETH, "symbol": "WETH", "decimals": 18, "reserve_id": 0, "a_token": "0xa0",
             "variable_debt_token": "0xd0", "price_source": FEED, "source_kind": "feed"},
            {"pool": POOL, "asset": WST, "symbol": "wstETH", "decimals": 18, "reserve_id": 1, "a_token": "0xa1",
             "variable_debt_token": "0xd1", "price_source": CAPO, "source_kind": "capped_ratio", "base_feed": FEED},
        ],
        reserve_states_at_start=[
            {**reserve, "asset": WETH, "configuration": str(_configuration(8000, 8300, 10500, 1000))},
            {**reserve, "asset": WST, "configuration": str(_configuration(7800, 8100, 10600, 1000))},
        ],
        emode_categories=[{"pool": POOL, "category_id": 1, "ltv": 9300, "liquidation_threshold": 9500,
                           "liquidation_bonus": 10100, "collateral_bitmap": "3", "borrowable_bitmap": "3"}],
        positions_at_start=[
            {"pool": POOL, "user": USER, "asset": WST, "emode_category": 1, "scaled_a_token_balance": 100 * WAD,
             "scaled_variable_debt": 0, "using_as_collateral": True},
            {"pool": POOL, "user": USER, "asset": WETH, "emode_category": 1, "scaled_a_token_balance": 0,
             "scaled_variable_debt": 114 * WAD, "using_as_collateral": False},
        ],
        blocks=[{"block_number": 99, "timestamp": 1000}, {"block_number": 100, "timestamp": 1012},
                {"block_number": 101, "timestamp": 1024}],
        capo_states=[{**snap, "block_number": 99}, {**capo_after, "block_number": 100},
                     {**capo_after, "block_number": 101}],
        feed_answers=[{"block_number": n, "feed": FEED, "answer": 2000 * 10**8} for n in (99, 100, 101)],
        oracle_prices=[{"block_number": 99, "pool": POOL, "asset": WST, "price": 2400 * 10**8},
                       {"block_number": 100, "pool": POOL, "asset": WST, "price": 2380 * 10**8}],
        events=events,
    )


def _log(block, tx, log, **fields):
    return {"block_number": block, "transaction_index": tx, "log_index": log, "transaction_hash": f"0xt{block}{tx}",
            **fields}


def test_engine_orders_an_intra_block_cap_update_before_a_later_liquidation():
    liquidation = dict(address=POOL, collateral_asset=WST, debt_asset=WETH, user=USER, debt_to_cover=10 * WAD,
                       liquidated_collateral_amount=0, liquidator=LIQ, receive_a_token=False)
    events = {
        # tx 0: a liquidation before the cap update; tx 1: the update (cap 1.2 -> 1.19); tx 2: a liquidation.
        "liquidations": [_log(100, 0, 0, **liquidation), _log(100, 2, 5, **liquidation)],
        "cap_parameter_updates": [_log(100, 1, 3, address=CAPO, snapshot_ratio=119 * WAD // 100,
                                       snapshot_timestamp=0, max_ratio_growth_per_second=0)],
    }
    result = run_replay(_inputs(events), {"wstETH": TrueModel("uncapped")})
    kinds = [(cp.kind, cp.block_number, cp.transaction_index) for cp in result.checkpoints]
    assert kinds == [("start", 99, None), ("liquidation", 100, 0), ("liquidation", 100, 2),
                     ("price_change", 100, None), ("end", 101, None)]
    # The same state valued directly: 100 wstETH at the price, LT 95% (eMode); debt 114 WETH x 2000.
    # At the true (uncapped) 2400 the health factor is exactly 1: not liquidatable, the boundary case.
    emode = EModeCategory(1, 9300, 9500, 10100, collateral_bitmap=3)

    def hf(price):
        res = {WETH: ReserveState(WETH, 0, 18, 8000, 8300, 10500, 1000, RAY, RAY, 0, 0, 1000),
               WST: ReserveState(WST, 1, 18, 7800, 8100, 10600, 1000, RAY, RAY, 0, 0, 1000)}
        pos = [UserReservePosition(WST, 100 * WAD, 0, True, False), UserReservePosition(WETH, 0, 114 * WAD, False, True)]
        return health_factor("3.6", pos, res, {WST: price, WETH: 2000 * 10**8}, emode, 1012).health_factor_wad

    before, after = result.tables["verdicts"]
    assert before["hf_reported"] == hf(2400 * 10**8) == WAD and before["verdict"] == "anomaly"
    assert after["hf_reported"] == hf(2380 * 10**8) < WAD  # 100 * 2380 * 0.95 / (114 * 2000) = 0.9917
    assert after["hf_true"] == hf(2400 * 10**8) and after["verdict"] == "wrongly_eligible"
    assert result.summary["reported_price_mismatches"] == 0
    path = [(p["block_number"], p["reported_price"], p["true_price"]) for p in result.tables["price_path"]
            if p["symbol"] == "wstETH"]
    assert path == [(100, 2380 * 10**8, 2400 * 10**8), (101, 2380 * 10**8, 2400 * 10**8)]
    # Never liquidated in these inputs' terms? It was: so at_risk is empty, and the health table holds it.
    assert result.tables["at_risk"] == []
    assert {h["checkpoint_kind"] for h in result.tables["health"] if h["user"] == USER} == {
        "start", "liquidation", "price_change", "end"}


def test_engine_reports_positions_at_risk_that_were_not_liquidated():
    events = {"cap_parameter_updates": [_log(100, 0, 0, address=CAPO, snapshot_ratio=119 * WAD // 100,
                                             snapshot_timestamp=0, max_ratio_growth_per_second=0)]}
    result = run_replay(_inputs(events), {"wstETH": TrueModel("uncapped")})
    (row,) = result.tables["at_risk"]
    assert row["user"] == USER and row["first_block"] == 100 and row["checkpoints_wrongly_eligible"] == 2
    assert row["seconds_wrongly_eligible"] == 1024 - 1012  # from block 100's end to the window's end
    assert row["exposed_debt_to_cover"] > 0 and row["exposed_loss_base"] > 0
    # Under the reported price as the truth, nobody is wrongly eligible.
    assert run_replay(_inputs(events), {}).tables["at_risk"] == []


def test_engine_refuses_inconsistent_events():
    events = {"balance_transfers": [_log(100, 0, 0, address="0xa1", from_address=USER, to_address=LIQ,
                                         value=101 * WAD, index=RAY)]}
    with pytest.raises(PostmortemError, match="re-ingest"):
        run_replay(_inputs(events), {})


def test_two_liquidations_in_one_transaction():
    """The second LiquidationCall of a transaction sees the first one's token events, not the later ones."""
    liquidation = dict(address=POOL, collateral_asset=WST, debt_asset=WETH, user=USER, debt_to_cover=WAD,
                       liquidated_collateral_amount=0, liquidator=LIQ, receive_a_token=False)
    # Debt-token Burn of 10 scaled WETH (index 1: value = amount) inside the first liquidation, and
    # one after the second LiquidationCall that its checkpoint must not see.
    burn = dict(address="0xd0", from_address=USER, target=ZERO_ADDRESS, value=10 * WAD, balance_increase=0, index=RAY)
    events = {
        "cap_parameter_updates": [_log(100, 0, 0, address=CAPO, snapshot_ratio=119 * WAD // 100,
                                       snapshot_timestamp=0, max_ratio_growth_per_second=0)],
        "token_burns": [_log(100, 1, 1, **burn), _log(100, 1, 4, **burn)],
        "liquidations": [_log(100, 1, 2, **liquidation), _log(100, 1, 3, **liquidation)],
    }
    result = run_replay(_inputs(events), {"wstETH": TrueModel("uncapped")})
    first, second = result.tables["verdicts"]
    cps = {cp.ordinal: cp for cp in result.checkpoints}
    assert (cps[first["checkpoint"]].transaction_index, cps[first["checkpoint"]].after_log_index) == (1, None)
    assert (cps[second["checkpoint"]].transaction_index, cps[second["checkpoint"]].after_log_index) == (1, 2)
    debt = {h["checkpoint"]: h["debt_base_reported"] for h in result.tables["health"] if h["user"] == USER}
    assert debt[first["checkpoint"]] == 114 * 2000 * 10**8
    assert debt[second["checkpoint"]] == 104 * 2000 * 10**8  # the burn at log 1 only
    final = {p.asset: p for p in result.book.positions(POOL, USER)}
    assert final[WETH].scaled_variable_debt == 94 * WAD  # both, by the end


def test_engine_on_a_v3_0_market():
    """v3.0 (`@aave/core-v3` 1.19.3): eMode membership is the reserve's own category (configuration
    bits 168-175), categories carry no bitmaps, and token amounts move by rayDiv (half up)."""
    inputs = _inputs({
        "cap_parameter_updates": [_log(100, 0, 0, address=CAPO, snapshot_ratio=119 * WAD // 100,
                                       snapshot_timestamp=0, max_ratio_growth_per_second=0)],
        # A 1 WETH repay at index 1.5 (v3.0 Burn: value = amount - interest): scaled -= rayDiv(1e18, 1.5e27).
        "token_burns": [_log(100, 1, 1, address="0xd0", from_address=USER, target=LIQ, value=WAD,
                             balance_increase=0, index=3 * RAY // 2)],
    })
    inputs.markets[0].update(aave_revision="3.0", pool_revision=1)
    for state in inputs.reserve_states_at_start:
        state["configuration"] = str(int(state["configuration"]) | 1 << 168)  # both reserves in category 1
    for cat in inputs.emode_categories:
        cat["collateral_bitmap"] = cat["borrowable_bitmap"] = None
    result = run_replay(inputs, {"wstETH": TrueModel("uncapped")})
    final = {p.asset: p for p in result.book.positions(POOL, USER)}
    assert final[WETH].scaled_variable_debt == 114 * WAD - div_half_up(WAD, 3 * RAY // 2)
    end = [h for h in result.tables["health"] if h["checkpoint_kind"] == "end"]
    (row,) = end
    reserves = {
        WETH: ReserveState(WETH, 0, 18, 8000, 8300, 10500, 1000, RAY, RAY, 0, 0, 1000, emode_category_id=1),
        WST: ReserveState(WST, 1, 18, 7800, 8100, 10600, 1000, RAY, RAY, 0, 0, 1000, emode_category_id=1),
    }
    positions = [UserReservePosition(WST, 100 * WAD, 0, True, False),
                 UserReservePosition(WETH, 0, final[WETH].scaled_variable_debt, False, True)]
    emode = EModeCategory(1, 9300, 9500, 10100)
    want = health_factor("3.0", positions, reserves, {WST: 2380 * 10**8, WETH: 2000 * 10**8}, emode, 1024)
    assert row["hf_reported"] == want.health_factor_wad < WAD
