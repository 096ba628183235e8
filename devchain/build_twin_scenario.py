"""Build ``scenarios/wsteth-capo-2026-03-10-mainnet.json``: the mainnet twin of the incident.

Usage::

    python -m postmortem.devchain.build_twin_scenario ../shared/reference/incident-2026-03-10-liquidations.csv \\
        /path/to/node_modules/@aave-dao/aave-address-book/src

Inputs are facts: the decoded mainnet ``LiquidationCall`` logs (CSV) and the address book of
npm ``@aave-dao/aave-address-book`` (Solidity sources; the addresses are copied into the JSON,
so the package is needed only to rebuild). The output says where every contract goes, what the
oracle inputs are and how they were derived, and which transactions the window holds.

The prices are *solved* from the logs, not guessed. For a WETH-debt log,
``liquidatedCollateralAmount = seized - fee`` with ``seized = percentMul(floor(Pw * D / Ps), bonus)``
and ``fee = percentMul(seized - percentDiv(seized, bonus), 10%)`` (v3.6 LiquidationLogic, mirrored
by ``replay.aave_math.liquidation_logic``). Each log therefore confines ``Ps / Pw`` (wstETH over
WETH price) to an interval of relative width 1e-22 .. 1e-15; the logs of one block intersect;
the integer pairs (Pw, Ps) in that intersection are enumerated with the Stern-Brocot tree, and the
one WETH price that fits every block (Pw constant over the 84 s) is kept. The wstETH price is
``floor(Pw * cap(t) / 1e18)`` with ``cap(t) = S + g * (t - T)``, ``g = S * bps / 1e4 / 365 days``;
the per-block intervals of ``cap(t)`` then fix ``bps`` and ``S`` (T is the published snapshot
time). The cbETH and osETH debt prices follow from their single logs at that wstETH price.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import OrderedDict
from decimal import ROUND_UP, Decimal
from fractions import Fraction
from pathlib import Path

from postmortem.devchain.build_incident_scenario import size_debt
from postmortem.replay.aave_math.percentage_math import percent_div, percent_mul

UPDATE_BLOCK = 24626860
LAST_CAPPED = 24628088
FROM_BLOCK, TO_BLOCK = 24626850, 24628100
UPDATE_TS = 1773143171  # mainnet timestamp of UPDATE_BLOCK; the window's blocks are 12 s apart
SNAPSHOT_TS = 1772535647  # published: the snapshot date the update wrote (2026-03-03 11:00:47)
LIVE_RATE = Decimal("1.228848994")  # stETH per wstETH in the window (published)
FEE_BPS = 1000
EMODE_BONUS, WSTETH_BONUS = 10100, 10600
SECONDS_PER_YEAR = 365 * 86400
GENESIS_BLOCKS = 1500  # room for set-up before the range
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
MULTICALL3 = "0xcA11bde05977b3631167028862bE2a173976CA11"
STETH = "0xae7ab96520DE3A18E5e111B5EaAb095312D7fE84"
OUT = Path(__file__).resolve().parent / "scenarios" / "wsteth-capo-2026-03-10-mainnet.json"

# Reserves per market: (symbol, price-source kind, ltv, lt, bonus, reserve factor, rate params).
# Risk parameters close to mainnet's in March 2026; kinds cover what mainnet uses.
CORE = [
    ("WETH", "feed", 8050, 8300, 10500, 1500, [9000, 0, 270, 8000]),
    ("wstETH", "capo", 7850, 8100, WSTETH_BONUS, 500, [8000, 0, 200, 8500]),
    ("WBTC", "feed", 7300, 7800, 10500, 2000, [8000, 0, 400, 30000]),
    ("USDC", "stable_cap", 7500, 7800, 10450, 1000, [9200, 0, 650, 6000]),
    ("USDT", "stable_cap", 7500, 7800, 10450, 1000, [9200, 0, 650, 6000]),
    ("DAI", "stable_cap", 6300, 7700, 10500, 2500, [9200, 0, 650, 6000]),
    ("LINK", "feed", 6600, 7100, 10700, 2000, [4500, 0, 700, 30000]),
    ("AAVE", "feed", 6600, 7300, 10750, 0, [4500, 0, 700, 30000]),
    ("cbETH", "capo", 7450, 7700, 10750, 1500, [4500, 0, 700, 30000]),
    ("rETH", "capo", 7450, 7700, 10750, 1500, [4500, 0, 700, 30000]),
    ("osETH", "capo", 7250, 7500, 10750, 1500, [4500, 0, 700, 30000]),
    ("weETH", "capo", 7250, 7500, 10750, 1500, [4500, 0, 700, 30000]),
    ("GHO", "fixed", 0, 0, 0, 1000, [9200, 0, 500, 6000]),
    ("SNX", "feed", 0, 6500, 10850, 3500, [4500, 0, 700, 30000]),
]
PRIME = [
    ("WETH", "feed", 8050, 8300, 10500, 1500, [9000, 0, 270, 8000]),
    ("wstETH", "capo", 7850, 8100, WSTETH_BONUS, 500, [8000, 0, 200, 8500]),
    ("USDC", "stable_cap", 7500, 7800, 10450, 1000, [9200, 0, 650, 6000]),
    ("USDS", "stable_cap", 7500, 7800, 10450, 1000, [9200, 0, 650, 6000]),
    ("GHO", "fixed", 0, 0, 0, 1000, [9200, 0, 500, 6000]),
]
FROZEN = {"core": ["SNX"]}
# USD prices (8 decimals) of the assets the logs do not constrain; LST ratios in ETH.
OTHER_PRICES = {"WBTC": "70123.45", "LINK": "15.12", "AAVE": "201.5", "SNX": "0.91",
                "USDC": "0.9999", "USDT": "1.0002", "DAI": "0.99995", "USDS": "1.0", "GHO": "1"}
OTHER_RATIOS = {"rETH": "1.1543", "weETH": "1.0812"}
STABLE_CAP = "1.04"
EMODES = {
    "core": [
        {"id": 1, "ltv": 9300, "lt": 9500, "bonus": 10100, "label": "ETH correlated",
         "collateral": ["WETH", "wstETH", "cbETH", "rETH", "osETH", "weETH"], "borrowable": ["WETH"]},
        {"id": 2, "ltv": 9000, "lt": 9300, "bonus": 10100, "label": "Stablecoins",
         "collateral": ["USDC", "USDT", "DAI"], "borrowable": ["USDC", "USDT", "DAI", "GHO"]},
    ],
    "prime": [
        {"id": 1, "ltv": 9500, "lt": 9650, "bonus": 10100, "label": "ETH correlated",
         "collateral": ["WETH", "wstETH"], "borrowable": ["WETH"]},
    ],
}
# A Core filler (twin_run's "twin-filler-core-wsteth-1", eMode 1, target health factor 2.222) that
# leaves eMode in a quiet block of the window.
EMODE_CHANGE = {"block": 24626900, "user": "0xd6de2a8681caae97cc50bc5e8cfd1079447336d1", "category": 0}
BOOK_FILES = {"core": "AaveV3Ethereum.sol", "prime": "AaveV3EthereumLido.sol"}
MARKET_KEYS = {"pool_addresses_provider": "POOL_ADDRESSES_PROVIDER", "pool": "POOL",
               "pool_configurator": "POOL_CONFIGURATOR", "oracle": "ORACLE", "acl_manager": "ACL_MANAGER",
               "data_provider": "AAVE_PROTOCOL_DATA_PROVIDER", "collector": "COLLECTOR"}


# -- address book ---------------------------------------------------------------------------

def read_address_book(src: Path) -> dict:
    """Market and asset addresses of Core and Prime from the address book's Solidity sources."""
    out: dict = {}
    for market, fname in BOOK_FILES.items():
        text = (src / fname).read_text()
        consts = dict(re.findall(r"constant (\w+)\s*=\s*(?:\w+\()?\s*(0x[0-9a-fA-F]{40}|\d+)", text))
        m = {k: consts[v] for k, v in MARKET_KEYS.items()}
        m["assets"] = {}
        for sym, *_ in (CORE if market == "core" else PRIME):
            m["assets"][sym] = {"underlying": consts[f"{sym}_UNDERLYING"], "decimals": int(consts[f"{sym}_DECIMALS"]),
                                "a_token": consts[f"{sym}_A_TOKEN"], "variable_debt_token": consts[f"{sym}_V_TOKEN"],
                                "price_source": consts[f"{sym}_ORACLE"]}
        out[market] = m
    return out


# -- the price solver -------------------------------------------------------------------------

def liquidated_collateral(base: int, bonus: int, fee: int = FEE_BPS) -> int:
    """``liquidatedCollateralAmount`` from the bonus-free collateral (v3.6, not capped by balance)."""
    seized = percent_mul(base, bonus)
    return seized - percent_mul(seized - percent_div(seized, bonus), fee)


def bases_for(logged: int, bonus: int) -> list[int]:
    """Every ``floor(debtPrice * debtToCover / collPrice)`` that yields the logged collateral."""
    est = logged * 10_000 // (10_000 + (bonus - 10_000) * (10_000 - FEE_BPS) // 10_000)
    return [b for b in range(est - 64, est + 64) if liquidated_collateral(b, bonus) == logged]


def ratio_interval(row: dict, bonus: int) -> tuple[Fraction, Fraction] | None:
    """Closed interval of ``collPrice / debtPrice`` reproducing the log with this bonus."""
    debt, logged = int(row["debt_to_cover"]), int(row["liquidated_collateral_amount"])
    bases = bases_for(logged, bonus)
    if not bases:
        return None
    # base <= Pd * D / Pc < base + 1  <=>  D / (base + 1) < Pc / Pd <= D / base
    return Fraction(debt, max(bases) + 1), Fraction(debt, min(bases))


def _simplest(lo: Fraction, hi: Fraction) -> Fraction:
    """The fraction with the smallest denominator in the closed interval [lo, hi] (lo > 0)."""
    fl = lo.numerator // lo.denominator
    if fl == lo or fl + 1 <= hi:
        return Fraction(fl if fl == lo else fl + 1)
    return fl + 1 / _simplest(1 / (hi - fl), 1 / (lo - fl))


def fractions_between(lo: Fraction, hi: Fraction, max_den: int) -> list[Fraction]:
    """Every fraction p/q in [lo, hi] with q <= max_den, by Stern-Brocot splitting."""
    out, stack = [], [(lo, hi)]
    while stack:
        a, b = stack.pop()
        if b < a:
            continue
        s = _simplest(a, b)
        if s.denominator > max_den:
            continue
        out.append(s)
        eps = Fraction(1, 10**40)
        stack += [(a, s - eps), (s + eps, b)]
    return out


def solve_prices(rows: list[dict]) -> dict:
    weth_rows = [r for r in rows if r["debt_asset"] == WETH]
    bonus_of: dict[int, int] = {}
    blocks: dict[int, tuple[Fraction, Fraction]] = {}
    # A log fits the eMode bonus or the reserve's own; the common ratio of the block decides:
    # intersect the narrowest intervals first and leave out a log that does not fit it (it
    # used another bonus, found below).
    intervals = [(int(r["block"]), ratio_interval(r, EMODE_BONUS)) for r in weth_rows]
    intervals = sorted((x for x in intervals if x[1] is not None), key=lambda x: x[1][1] - x[1][0])
    for b, iv in intervals:
        lo, hi = blocks.get(b, (iv[0], iv[1]))
        cand = (max(lo, iv[0]), min(hi, iv[1]))
        if cand[0] <= cand[1]:
            blocks[b] = cand
    first = blocks[UPDATE_BLOCK]
    candidates = set()
    for f in fractions_between(first[0], first[1], 10**12):
        k = 1
        while f.denominator * k <= 10**12:
            candidates.add((f.numerator * k, f.denominator * k))
            k += 1
    fits = []
    for _ps, pw in sorted(candidates, key=lambda c: c[1]):
        ps_by_block = {}
        for b, (lo, hi) in blocks.items():
            low = -(-lo.numerator * pw // lo.denominator)
            high = hi.numerator * pw // hi.denominator
            if low > high:
                break
            ps_by_block[b] = low
        else:
            fits.append((pw, ps_by_block))
    # Multiples k * (Pw, Ps) fit as well; the published volume (USD 26M .. 27.8M for 12,943.6
    # WETH of debt repaid) puts ETH between USD 1,900 and 2,200: exactly one fits there.
    fits = [f for f in fits if 1_900 * 10**8 <= f[0] <= 2_200 * 10**8]
    if len(fits) != 1:
        raise SystemExit(f"expected one WETH price fitting every block, found {len(fits)}")
    pw, ps_by_block = fits[0]
    ts = {int(r["block"]): int(r["timestamp"]) for r in rows}
    cap_iv = {b: (-(-ps * 10**18 // pw), -(-(ps + 1) * 10**18 // pw)) for b, ps in ps_by_block.items()}  # [A, B)
    g_lo, g_hi = -(10**30), 10**30
    for b1, (a1, _b1) in cap_iv.items():
        for b2, (_a2, bb2) in cap_iv.items():
            d = ts[b2] - ts[b1]
            if d > 0:
                g_hi = min(g_hi, (bb2 - a1 - 1) // d)
                g_lo = max(g_lo, (cap_iv[b2][0] - cap_iv[b1][1]) // d + 1)
    sols = []
    for g in range(g_lo, g_hi + 1):
        lo = max(a - g * (ts[b] - SNAPSHOT_TS) for b, (a, _) in cap_iv.items())
        hi = min(bb - g * (ts[b] - SNAPSHOT_TS) for b, (_, bb) in cap_iv.items())
        if lo >= hi:
            continue
        # g = floor(S * bps / 1e4 / year): only the bps next to g * year * 1e4 / S can fit.
        near = {g * SECONDS_PER_YEAR * 10_000 // s for s in (lo, hi)}
        for bps in range(min(near) - 1, max(near) + 2):
            s_lo = max(lo, -(-g * SECONDS_PER_YEAR * 10_000 // bps))
            s_hi = min(hi, ((g + 1) * SECONDS_PER_YEAR * 10_000 + bps - 1) // bps)
            if s_lo < s_hi:
                sols.append((g, bps, s_lo, s_hi))
    if len(sols) != 1:
        raise SystemExit(f"expected one (growth, bps) for the cap, found {sols}")
    g, bps, s_lo, s_hi = sols[0]
    snapshot = (s_lo + s_hi) // 2
    assert snapshot * bps // 10_000 // SECONDS_PER_YEAR == g

    def ps_at(t: int) -> int:
        return pw * (snapshot + g * (t - SNAPSHOT_TS)) // 10**18

    for b, ps in ps_by_block.items():
        assert ps_at(ts[b]) == ps, b
    # Bonus of every log at the solved prices; the debt price of non-WETH logs.
    other_prices: dict[str, int] = {}
    for i, r in enumerate(rows):
        ps, debt, logged = ps_at(int(r["timestamp"])), int(r["debt_to_cover"]), int(r["liquidated_collateral_amount"])
        for bonus in (EMODE_BONUS, WSTETH_BONUS):
            if r["debt_asset"] == WETH:
                if liquidated_collateral(pw * debt // ps, bonus) == logged:
                    bonus_of[i] = bonus
                    break
            else:
                bases = bases_for(logged, bonus)
                if not bases:
                    continue
                low = -(-min(bases) * ps // debt)
                high = -(-(max(bases) + 1) * ps // debt)
                if low < high:
                    bonus_of[i] = bonus
                    other_prices[r["debt_asset"]] = low
                    break
        if i not in bonus_of:
            raise SystemExit(f"log {r['tx']}:{r['log_index']} fits neither bonus at the solved prices")
    return {"weth_price": pw, "snapshot_ratio": snapshot, "snapshot_ratio_range": [s_lo, s_hi - 1],
            "max_yearly_growth_bps": bps, "growth_per_second": g, "snapshot_timestamp": SNAPSHOT_TS,
            "wsteth_price_by_block": {str(b): ps_at(ts[b]) for b in sorted(ts)},
            "debt_prices": other_prices, "bonus_of": bonus_of}


# -- the scenario -----------------------------------------------------------------------------

def _ceil_units(x: Decimal, decimals: int = 18) -> int:
    return int((x * (Decimal(10) ** decimals)).to_integral_value(ROUND_UP))


def build(csv_path: Path, book_src: Path) -> dict:
    rows = [r for r in csv.DictReader(open(csv_path)) if UPDATE_BLOCK <= int(r["block"]) <= LAST_CAPPED]
    rows.sort(key=lambda r: (int(r["block"]), int(r["log_index"])))
    for r in rows:
        if int(r["timestamp"]) != UPDATE_TS + 12 * (int(r["block"]) - UPDATE_BLOCK):
            raise SystemExit(f"block {r['block']} is not 12 s per block after {UPDATE_BLOCK}")
    book = read_address_book(book_src)
    sol = solve_prices(rows)
    pw = sol["weth_price"]
    symbol_of = {a["underlying"].lower(): s for m in book.values() for s, a in m["assets"].items()}
    # Debt prices as ratio-adapter inputs: floor(Pw * ratio / 1e18) must be the solved price.
    ratios = {}
    for addr, price in sol["debt_prices"].items():
        ratio = -(-price * 10**18 // pw)
        assert pw * ratio // 10**18 == price
        ratios[symbol_of[addr]] = str(ratio)
    for sym, r in OTHER_RATIOS.items():
        ratios[sym] = str(_ceil_units(Decimal(r)))
    ratios["wstETH"] = str(_ceil_units(LIVE_RATE))

    # Victims: one position per (user, market); eMode when their logs used the eMode bonus.
    positions: "OrderedDict[tuple[str, str], list[int]]" = OrderedDict()
    for i, r in enumerate(rows):
        positions.setdefault((r["user"], r["market"]), []).append(i)
    victims = []
    lt = {(m, s): spec[2] for m, specs in (("core", CORE), ("prime", PRIME)) for s, *spec in specs}
    emode_lt = {m: e[0]["lt"] for m, e in EMODES.items()}
    price_eth = {WETH: Decimal(1)}
    for addr, price in sol["debt_prices"].items():
        price_eth[addr] = Decimal(price) / Decimal(pw)
    for k, ((user, market), idx) in enumerate(positions.items()):
        liqs = [rows[i] for i in idx]
        emode = sol["bonus_of"][idx[0]] == EMODE_BONUS
        debt_asset = liqs[0]["debt_asset"]
        covers = [Decimal(int(r["debt_to_cover"])) / Decimal(10**18) for r in liqs]
        debt = max(size_debt(covers) * Decimal("1.0005"), sum(covers) / Decimal("0.6") if len(covers) > 1 else 0)
        debt = debt.quantize(Decimal("0.000001"), ROUND_UP)
        hf = Decimal("1.004") if len(liqs) > 1 else Decimal("1.006") + Decimal(k % 10) * Decimal("0.002")
        lt_bps = emode_lt[market] if emode else lt[(market, "wstETH")]
        collateral = (hf * debt * price_eth[debt_asset] / (Decimal(lt_bps) / 10_000 * LIVE_RATE)).quantize(
            Decimal("0.000001"), ROUND_UP)
        victims.append({"user": user, "market": market, "emode": 1 if emode else 0,
                        "supply_wsteth": str(collateral), "borrow": {symbol_of[debt_asset]: str(debt)},
                        "true_hf": str(hf), "liquidations": len(liqs)})
    liquidators = sorted({r["liquidator"] for r in rows})
    timeline: "OrderedDict[int, list[dict]]" = OrderedDict()
    timeline[UPDATE_BLOCK] = [{"do": "set_cap_parameters", "snapshot_ratio": str(sol["snapshot_ratio"]),
                               "snapshot_timestamp": SNAPSHOT_TS, "max_yearly_growth_bps": sol["max_yearly_growth_bps"]}]
    for r in rows:
        timeline.setdefault(int(r["block"]), []).append({
            "do": "liquidate", "market": r["market"], "user": r["user"], "liquidator": r["liquidator"],
            "collateral": symbol_of[r["collateral_asset"]], "debt": symbol_of[r["debt_asset"]],
            "debt_to_cover": r["debt_to_cover"], "receive_a_token": r["receive_atoken"] == "true",
            "mainnet": {"tx": r["tx"], "log_index": int(r["log_index"]),
                        "liquidated_collateral_amount": r["liquidated_collateral_amount"]}})
    # A quirk of mainnet the replay must follow: a user leaves eMode inside the window (a generated
    # eMode WETH borrower of Core with health factor 2.22, still healthy outside eMode).
    timeline[EMODE_CHANGE["block"]] = [{"do": "set_emode", "market": "core", "user": EMODE_CHANGE["user"],
                                        "category": EMODE_CHANGE["category"]}]
    fix_block = LAST_CAPPED + 1
    fix_ts = UPDATE_TS + 12 * (fix_block - UPDATE_BLOCK)
    timeline[fix_block] = [{"do": "set_cap_parameters", "snapshot_ratio": str(_ceil_units(Decimal("1.2282"))),
                            "snapshot_timestamp": fix_ts - 7 * 86400, "max_yearly_growth_bps": sol["max_yearly_growth_bps"]}]
    return {
        "name": "wsteth-capo-2026-03-10-mainnet",
        "runner": "twin",
        "description": "A mainnet twin of the 2026-03-10 wstETH capped-oracle incident: chain id 1, mainnet block "
                       "numbers and timestamps in 24,626,850..24,628,100, Core and Prime at their mainnet addresses, "
                       "the real borrowers and liquidators, and the 49 LiquidationCall logs of the window.",
        "chain_id": 1,
        # anvil starts at GENESIS_BLOCKS before the range, an hour before its first block: set-up
        # blocks are one second apart, then empty blocks reach the range.
        "genesis_timestamp": UPDATE_TS - 12 * (UPDATE_BLOCK - FROM_BLOCK) - 3600,
        "anvil_args": ["--chain-id", "1", "--number", str(FROM_BLOCK - GENESIS_BLOCKS)],
        "range": {"from_block": FROM_BLOCK, "to_block": TO_BLOCK, "update_block": UPDATE_BLOCK,
                  "update_timestamp": UPDATE_TS, "block_seconds": 12, "last_capped_block": LAST_CAPPED},
        "true_rate": str(LIVE_RATE),
        "derivation": (
            "Solved by devchain/build_twin_scenario.py from the decoded logs. Each WETH-debt log confines "
            "wstETH/WETH price to an interval (v3.6 _calculateAvailableCollateralToLiquidate: base = floor(Pw*D/Ps), "
            "seized = percentMul(base, bonus), fee = percentMul(seized - percentDiv(seized, bonus), 10%)); the "
            "intersection per block, enumerated with the Stern-Brocot tree for integer prices up to 1e12, leaves one "
            "WETH price constant over the window: Pw = 206270967767 (USD 2,062.70967767). The wstETH price per block "
            "is floor(Pw * cap / 1e18); its intervals fix the cap's growth to 3326024394 wei/s, i.e. 880 bps a year "
            "(not 885) on a snapshot ratio in snapshot_ratio_range at the published snapshot time 1772535647 (the "
            "midpoint is used). The three logs that fit only with the 6% bonus (0x3aac..., 0xf07e..., 0x1570...) are "
            "borrowers outside eMode; the cbETH and osETH debt logs then fix those prices (cbETH 232040792306, osETH "
            "220140915213), set as ratio-adapter ratios over Pw. Liquidation protocol fee 10%."),
        "solved": {k: v for k, v in sol.items() if k != "bonus_of"},
        "addresses": {"multicall3": MULTICALL3, "steth": STETH, "markets": book},
        "markets": {
            "core": {"reserves": [list(x) for x in CORE], "emodes": EMODES["core"], "frozen": FROZEN.get("core", [])},
            "prime": {"reserves": [list(x) for x in PRIME], "emodes": EMODES["prime"], "frozen": FROZEN.get("prime", [])},
        },
        "liquidation_protocol_fee": FEE_BPS,
        "prices": {"weth_usd": str(pw), "other_usd": OTHER_PRICES, "ratios": ratios, "stable_cap": STABLE_CAP},
        "capo": {"stale_snapshot_ratio": "1.1572", "stale_snapshot_timestamp": 1707400000,
                 "max_yearly_growth_bps": sol["max_yearly_growth_bps"], "minimum_snapshot_delay": 604800},
        "victims": victims,
        "liquidators": liquidators,
        "fillers": {"core_wsteth": 540, "prime_wsteth": 230, "core_other": 300, "seed": "twin-filler"},
        "timeline": [{"block": b, "txs": txs} for b, txs in timeline.items()],
    }


def main() -> None:
    scenario = build(Path(sys.argv[1]), Path(sys.argv[2]))
    OUT.write_text(json.dumps(scenario, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
