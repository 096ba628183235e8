"""What-if settings, sweeps, shocks and overrides without a chain: parsing (one sentence per bad
input), the capped-ratio formulas the counterfactual prices use, and the risk overrides."""

from __future__ import annotations

import pytest

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import EModeCategory, ReserveState
from postmortem.replay.aave_math.liquidation_logic import calculate_max_liquidatable_debt
from postmortem.replay.explain import _address
from postmortem.replay.prices import (
    SECONDS_PER_YEAR,
    CapOverrides,
    CappedRatioState,
    PriceComponents,
    counterfactual_price,
    is_capped,
    shift_price,
    yearly_growth_bps,
)
from postmortem.replay.reserve_book import RiskOverrides
from postmortem.replay.stress import parse_shock, preset_shocks
from postmortem.replay.whatif import Counterfactual, World, format_value, parse_setting, parse_sweep, sweep_values

CORE, PRIME = "0x" + "aa" * 20, "0x" + "bb" * 20
WORLD = World(markets={"core": CORE, "prime": PRIME},
              symbols={"WETH": {CORE, PRIME}, "wstETH": {CORE, PRIME}, "USDC": {CORE}},
              categories={CORE: {1}, PRIME: {1}}, capped_symbols={"wstETH"})


def test_settings_parse_to_exact_integers():
    assert parse_setting("reported_price=true", WORLD).value == 1
    s = parse_setting("wstETH.snapshot_ratio=1.2267668513581984", WORLD)
    assert (s.param, s.target, s.value) == ("snapshot_ratio", ("wstETH",), 1_226_766_851_358_198_400)
    assert parse_setting("wsteth.max_yearly_growth=8.85%", WORLD).value == 885
    assert parse_setting("wstETH.snapshot_timestamp=2026-03-03T11:00:47", WORLD).value == 1772535647
    assert parse_setting("price_shift=-30%", WORLD).value == -3000
    assert parse_setting("core.wstETH.liquidation_threshold=81%", WORLD).target == ("core", "wstETH")
    assert parse_setting("core.wstETH.liquidation_bonus=5%", WORLD).value == 10_500
    assert parse_setting("prime.emode.1.liquidation_threshold=9650bps", WORLD).target == ("prime", "emode", 1)
    assert parse_setting("close_factor=100%", WORLD).value == 10_000
    assert format_value("snapshot_ratio", 1_226_766_851_358_198_400) == "1.2267668513581984"
    assert format_value("liquidation_bonus", 10_500) == "5%"


@pytest.mark.parametrize("text,needle", [
    ("nonsense=1", "unknown KEY"),
    ("reported_price", "KEY=VALUE"),
    ("wstETH.snapshot_ratio=abc", "not a valid value"),
    ("wstETH.snapshot_ratio=-1", "not a valid value"),
    ("oracle_delay=-2", "not a valid value"),
    ("price_shift=-100%", "not a valid value"),
    ("close_factor=150%", "not a valid value"),
    ("wstETH.liquidation_threshold=80.123%", "not a valid value"),
    ("DOGE.liquidation_threshold=80%", "unknown asset"),
    ("WETH.snapshot_ratio=1.2", "not priced by a capped-ratio adapter"),
    ("emode.7.liquidation_threshold=95%", "eMode category 7"),
    ("prime.USDC.protocol_fee=10%", "not a reserve of market prime"),
    ("wstETH.oracle_delay=3", "takes no asset"),
    ("snapshot_ratio=1.2", "needs an asset"),
])
def test_bad_settings_end_in_one_sentence(text, needle):
    with pytest.raises(PostmortemError) as err:
        parse_setting(text, WORLD)
    msg = str(err.value)
    assert needle in msg and "\n" not in msg


def test_sweeps():
    a, b, n = parse_sweep("wstETH.snapshot_ratio=1.18:1.24:61", WORLD)
    assert (a.value, b.value, n) == (1_180_000_000_000_000_000, 1_240_000_000_000_000_000, 61)
    values = sweep_values(a.value, b.value, n)
    assert values[0] == a.value and values[-1] == b.value and len(values) == 61
    assert sweep_values(0, 10, 11) == list(range(11)) and sweep_values(5, 9, 1) == [5]
    a, b, n = parse_sweep("wstETH.snapshot_timestamp=2026-03-03T11:00:47:2026-03-04T11:00:47:3", WORLD)
    assert b.value - a.value == 86_400 and n == 3
    for bad, needle in (("oracle_delay=0:3:0", "STEPS"), ("oracle_delay=0:3", "KEY=START:STOP:STEPS"),
                        ("oracle_delay=0:3:x", "STEPS"), ("reported_price=0:1:2", "makes no sense"),
                        ("bogus=0:1:2", "unknown KEY")):
        with pytest.raises(PostmortemError, match=needle):
            parse_sweep(bad, WORLD)


def test_cap_overrides_follow_set_cap_parameters():
    """Growth per second = snapshotRatio * yearly / 10000 / SECONDS_PER_YEAR, as the adapter computes it."""
    state = CappedRatioState(snapshot_ratio=1_191_916_000_000_000_000, snapshot_timestamp=1_772_535_647,
                             max_ratio_growth_per_second=1_191_916_000_000_000_000 * 885 // 10_000 // SECONDS_PER_YEAR,
                             ratio=1_228_848_994_000_000_000)
    assert yearly_growth_bps(state) == 885
    comps = PriceComponents("capped_ratio", capo=state, base_answer=2_000_00000000)
    t = 1_773_143_171
    assert is_capped(comps, t)
    assert counterfactual_price(comps, t) == 2_000_00000000 * state.max_ratio(t) // 10**18
    s = 1_227_000_000_000_000_000
    o = CapOverrides(snapshot_ratio=s)
    st = o.apply(state)
    assert st.max_ratio_growth_per_second == s * 885 // 10_000 // SECONDS_PER_YEAR
    assert st.snapshot_timestamp == state.snapshot_timestamp and st.ratio == state.ratio
    assert not is_capped(comps, t, o)
    assert counterfactual_price(comps, t, o) == 2_000_00000000 * state.ratio // 10**18
    assert CapOverrides(max_yearly_growth_bps=0).apply(state).max_ratio_growth_per_second == 0
    assert shift_price(1000, -3000) == 700 and shift_price(1001, -3000) == 700 and shift_price(5, -10_000) == 0


def _reserve(asset: str, lt=8000, bonus=10500, fee=1000) -> ReserveState:
    return ReserveState(asset=asset, id=0, decimals=18, ltv_bps=7000, liquidation_threshold_bps=lt,
                        liquidation_bonus_bps=bonus, liquidation_protocol_fee_bps=fee,
                        liquidity_index_ray=10**27, variable_borrow_index_ray=10**27, liquidity_rate_ray=0,
                        variable_borrow_rate_ray=0, last_update_timestamp=0)


def test_risk_overrides_apply_per_pool_and_everywhere():
    cf = Counterfactual([parse_setting("core.wstETH.liquidation_threshold=81%", WORLD),
                         parse_setting("wstETH.protocol_fee=20%", WORLD),
                         parse_setting("prime.emode.1.liquidation_bonus=2%", WORLD),
                         parse_setting("close_factor=100%", WORLD)], WORLD)
    assets = {(CORE, "wstETH"): "0xw1", (PRIME, "wstETH"): "0xw2"}
    risk = cf.risk(lambda pool, sym: [(p, a) for (p, s), a in assets.items() if s == sym and (pool is None or p == pool)])
    core = risk.apply_reserves(CORE, {"0xw1": _reserve("0xw1")})["0xw1"]
    prime = risk.apply_reserves(PRIME, {"0xw2": _reserve("0xw2")})["0xw2"]
    assert (core.liquidation_threshold_bps, core.liquidation_protocol_fee_bps) == (8100, 2000)
    assert (prime.liquidation_threshold_bps, prime.liquidation_protocol_fee_bps) == (8000, 2000)
    cat = EModeCategory(1, 9300, 9500, 10100)
    assert risk.apply_emode(PRIME, cat).liquidation_bonus_bps == 10200
    assert risk.apply_emode(CORE, cat) == cat
    assert risk.rule_overrides() == {"partial_close_factor_bps": 10_000}
    assert not RiskOverrides()


def test_partial_close_factor_replaces_the_protocols_half():
    args = ("3.0", 99 * 10**16, 0, 1000, 0, 0, 10**8, 10**18)
    assert calculate_max_liquidatable_debt(*args) == (500, 5000)
    assert calculate_max_liquidatable_debt(*args, partial_close_factor_bps=7500) == (750, 7500)


def test_shocks_and_presets():
    symbols = {"WETH", "wstETH", "USDC"}
    assert parse_shock("wsteth=-30%", symbols) == ("wstETH", -3000)
    assert parse_shock("WETH=-2500bps", symbols) == ("WETH", -2500)
    for bad, needle in (("DOGE=-30%", "unknown asset"), ("wstETH", "ASSET=PCT"), ("wstETH=-120%", "above -100%"),
                        ("wstETH=lots", "above -100%")):
        with pytest.raises(PostmortemError, match=needle):
            parse_shock(bad, symbols)
    prices = {"WETH": 2_000_00000000, "wstETH": 2_400_00000000, "USDC": 1_0000_0000 - 30_000}
    assert preset_shocks("flash-crash-20", prices) == {"WETH": -2000, "wstETH": -2000}
    assert preset_shocks("flash-crash-30", prices)["wstETH"] == -3000
    with pytest.raises(PostmortemError, match="unknown preset"):
        preset_shocks("crash", prices)


def test_addresses():
    assert _address(" 0xAbC0000000000000000000000000000000000001 ") == "0xabc0000000000000000000000000000000000001"
    with pytest.raises(PostmortemError, match="not an address"):
        _address("0x123")
