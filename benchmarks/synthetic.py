"""A synthetic Aave v3.6 warehouse for scale benchmarks: N positions over K price checkpoints.

:func:`synthetic_inputs` returns :class:`replay.inputs.ReplayInputs` whose rows have the columns
and value types ``replay.inputs.load_inputs`` returns from a warehouse the ingest wrote
(``markets``, ``reserves``, ``reserve_states_at_start``, ``emode_categories``,
``positions_at_start``, ``blocks``, ``feed_answers``, ``oracle_prices``; amounts are Python ints;
the reserve configuration and bitmaps are decimal text as in the Parquet). Only what the
replay reads is produced; no Parquet is written.

One market (``core``, revision 3.6) with six reserves priced by plain feeds:

========  ========  ==========  ======  =====================================
symbol    decimals  price USD   LT bps  role
========  ========  ==========  ======  =====================================
WETH      18        2,500       8300    collateral, debt (eMode debt)
wstETH    18        2,950       8100    collateral (eMode collateral)
WBTC      8         60,000      7800    collateral
USDC      6         1           7800    collateral, debt
USDT      6         1           7800    debt
DAI       18        1           7700    debt
========  ========  ==========  ======  =====================================

eMode category 1 (ETH correlated: LTV 93%, LT 95%, wstETH + WETH collateral, WETH borrowable).

Borrowers (one position = one user with debt in the pool), about 2.6 ``positions_at_start``
rows each:

- 30% eMode loopers: wstETH collateral, WETH debt, health factor ``1 + LogNormal(0.25, 0.6)``
  (about 6% start under 1.10);
- 40% one collateral (WETH 50%, WBTC 25%, wstETH 15%, USDC 10%) and one stablecoin debt
  (WETH debt against USDC), HF ``1 + LogNormal(0.6, 0.8)`` (about 1.3% under 1.10);
- 30% two collaterals (WETH + WBTC) and two debts (USDC + USDT), same HF law.

Collateral value per user is LogNormal (median 5,000 USD, sigma 1.5, clipped to 50 USD - 50 M USD).
Health factors are clipped to at least 1.001 at the start.

Prices move at every block: a correlated random walk per block (ETH sigma 0.15%, BTC 0.12%
with correlation 0.7 to ETH, wstETH = ETH x a ratio drifting by 1e-5, stablecoins within a few
basis points of 1), so every block end is a ``price_change`` checkpoint: ``checkpoints`` blocks
give ``checkpoints`` block-end checkpoints plus the start. Indexes accrue by timestamp (12 s
blocks, rates 2-6%). No token events: positions only change by interest, the population is the
same at every checkpoint, which is the screening worst case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from postmortem.replay.inputs import ReplayInputs

RAY = 10**27
CHAIN_ID = 31337
POOL = "0x" + "87870bca3f3fd6335c3f4ce8392d69350b4fa4e2"
CONFIGURATOR = "0x" + "64b761d848206f447fe2dd461b0c635ec39ebb27"
GENESIS_TS = 1_773_000_000


@dataclass(frozen=True)
class Asset:
    symbol: str
    decimals: int
    price_usd: float
    ltv: int
    lt: int
    bonus: int
    liquidity_rate: float
    borrow_rate: float


ASSETS = [
    Asset("WETH", 18, 2500.0, 8050, 8300, 10500, 0.02, 0.03),
    Asset("wstETH", 18, 2950.0, 7850, 8100, 10600, 0.001, 0.005),
    Asset("WBTC", 8, 60000.0, 7300, 7800, 10500, 0.001, 0.01),
    Asset("USDC", 6, 1.0, 7500, 7800, 10450, 0.04, 0.06),
    Asset("USDT", 6, 1.0, 7500, 7800, 10450, 0.04, 0.06),
    Asset("DAI", 18, 1.0, 6300, 7700, 10500, 0.04, 0.06),
]
SYM = {a.symbol: i for i, a in enumerate(ASSETS)}


def _addr(kind: int, i: int) -> str:
    return "0x" + f"{kind:02x}" + f"{i:038x}"


def asset_address(i: int) -> str:
    return _addr(0xA0, i + 1)


def encode_reserve_configuration(ltv: int, lt: int, bonus: int, decimals: int, fee_bps: int = 1000) -> int:
    """The ``ReserveConfigurationMap`` bits :func:`replay.aave_math.decode_reserve_configuration` reads
    (active, borrowing enabled)."""
    return ltv | lt << 16 | bonus << 32 | decimals << 48 | 1 << 56 | 1 << 58 | fee_bps << 152


class LazyRows(Sequence):
    """``positions_at_start`` rows built on demand from NumPy columns (a list of dicts for a
    million positions would be several GiB; the replay only iterates it once)."""

    def __init__(self, user: np.ndarray, asset: np.ndarray, scaled_a: list[int], scaled_d: list[int],
                 collateral: np.ndarray, emode: np.ndarray, block: int, user_config: list[str]):
        self.user, self.asset, self.scaled_a, self.scaled_d = user, asset, scaled_a, scaled_d
        self.collateral, self.emode, self.block, self.user_config = collateral, emode, block, user_config
        self.float_a: np.ndarray | None = None  # the same amounts as floats (integer-valued), when known
        self.float_d: np.ndarray | None = None
        self._assets = [asset_address(i) for i in range(len(ASSETS))]

    def __len__(self) -> int:
        return len(self.user)

    def _row(self, r: int, u: int, a: int) -> dict:
        return {
            "market": "core", "pool": POOL, "user": _addr(0xB0, u + 1), "block_number": self.block,
            "emode_category": int(self.emode[u]), "user_configuration": self.user_config[u],
            "asset": self._assets[a], "scaled_a_token_balance": self.scaled_a[r],
            "scaled_variable_debt": self.scaled_d[r], "using_as_collateral": bool(self.collateral[r]),
            "borrowing": self.scaled_d[r] != 0,
        }

    def __getitem__(self, r):
        if isinstance(r, slice):
            return [self[i] for i in range(*r.indices(len(self)))]
        return self._row(r, int(self.user[r]), int(self.asset[r]))

    def __iter__(self):
        for r, (u, a) in enumerate(zip(self.user.tolist(), self.asset.tolist())):
            yield self._row(r, u, a)


def _user_configuration(users: np.ndarray, assets: np.ndarray, collateral: np.ndarray, debt: np.ndarray,
                        n_users: int) -> list[str]:
    bits = np.zeros(n_users, dtype=np.int64)
    np.bitwise_or.at(bits, users, np.where(debt, 1 << (2 * assets), 0))
    np.bitwise_or.at(bits, users, np.where(collateral, 1 << (2 * assets + 1), 0))
    return [str(b) for b in bits.tolist()]


def price_path(checkpoints: int, rng: np.random.Generator) -> np.ndarray:
    """``(checkpoints + 1, assets)`` prices in 1e8 USD units: the start block, then one per block."""
    n = checkpoints + 1
    z_eth = rng.standard_normal(n)
    z_btc = 0.7 * z_eth + np.sqrt(1 - 0.7**2) * rng.standard_normal(n)
    z_eth[0] = z_btc[0] = 0.0
    eth = ASSETS[SYM["WETH"]].price_usd * np.exp(np.cumsum(0.0015 * z_eth))
    btc = ASSETS[SYM["WBTC"]].price_usd * np.exp(np.cumsum(0.0012 * z_btc))
    ratio = 1.18 * np.exp(np.cumsum(np.r_[0.0, 1e-5 * rng.standard_normal(n - 1)]))
    out = np.empty((n, len(ASSETS)))
    out[:, SYM["WETH"]] = eth
    out[:, SYM["wstETH"]] = eth * ratio
    out[:, SYM["WBTC"]] = btc
    for s in ("USDC", "USDT", "DAI"):
        out[:, SYM[s]] = 1.0 + np.clip(0.0002 * rng.standard_normal(n), -0.002, 0.002)
    return np.round(out * 1e8)


def _decimal_column(values: np.ndarray):
    """Non-negative integer-valued floats (below 2**116) as an exact DECIMAL(38,0) Arrow array, built
    from its two 64-bit words (the same integers as ``int(value)``)."""
    import pyarrow as pa

    hi = np.floor(values / 2.0**64)
    lo = values - hi * 2.0**64  # exact: both are multiples of the value's ulp
    words = np.empty((len(values), 2), dtype=np.uint64)
    words[:, 0] = lo.astype(np.uint64)
    words[:, 1] = hi.astype(np.uint64)
    return pa.Array.from_buffers(pa.decimal128(38, 0), len(values), [None, pa.py_buffer(words.tobytes())])


def arrow_positions(rows: LazyRows):
    """The same ``positions_at_start`` as an Arrow table, with the warehouse's column types (the
    replay loads it by columns: :mod:`replay.start_columns`); built with Arrow's own kernels."""
    import pyarrow as pa

    n_users = int(rows.user.max()) + 1 if len(rows) else 0
    users = pa.array(np.array([_addr(0xB0, u + 1) for u in range(n_users)], dtype=object), type=pa.string())
    user_idx = pa.array(rows.user)
    n = len(rows)
    scaled_a = rows.float_a if rows.float_a is not None else np.array(rows.scaled_a, dtype=np.float64)
    scaled_d = rows.float_d if rows.float_d is not None else np.array(rows.scaled_d, dtype=np.float64)
    return pa.table({
        "market": pa.array(np.full(n, "core", dtype=object), type=pa.string()),
        "pool": pa.array(np.full(n, POOL, dtype=object), type=pa.string()),
        "user": users.take(user_idx),
        "block_number": pa.array(np.full(n, rows.block, dtype=np.int64)),
        "emode_category": pa.array(rows.emode[rows.user].astype(np.int32)),
        "user_configuration": pa.array(rows.user_config, type=pa.string()).take(user_idx),
        "asset": pa.array(rows._assets, type=pa.string()).take(pa.array(rows.asset)),
        "scaled_a_token_balance": _decimal_column(scaled_a),
        "scaled_variable_debt": _decimal_column(scaled_d),
        "using_as_collateral": pa.array(rows.collateral.astype(bool)),
        "borrowing": pa.array(scaled_d != 0),
    })


def synthetic_inputs(positions: int, checkpoints: int = 1000, *, seed: int = 1, arrow: bool = False) -> ReplayInputs:
    """``positions`` borrowers over ``checkpoints`` price-changing blocks (see the module docstring);
    ``arrow=True`` gives ``positions_at_start`` as an Arrow table (:func:`arrow_positions`)."""
    rng = np.random.default_rng(seed)
    n = int(positions)
    start_block = 1_000_000
    from_block, to_block = start_block + 1, start_block + checkpoints
    start_ts = GENESIS_TS + 12 * start_block
    prices = price_path(checkpoints, rng)
    p0 = prices[0] / 1e8
    # indexes at the start: 1.0x - 1.1x RAY, updated a day before the window
    liq_index = [int((1.0 + 0.1 * rng.random()) * 1e9) * 10**18 for _ in ASSETS]
    debt_index = [int((1.02 + 0.12 * rng.random()) * 1e9) * 10**18 for _ in ASSETS]

    kind = rng.choice(3, size=n, p=[0.3, 0.4, 0.3])  # 0 eMode, 1 one/one, 2 two/two
    hf = np.where(kind == 0, 1 + rng.lognormal(np.log(0.25), 0.6, n), 1 + rng.lognormal(np.log(0.6), 0.8, n))
    hf = np.maximum(hf, 1.001)
    value = np.clip(rng.lognormal(np.log(5000.0), 1.5, n), 50.0, 5e7)
    emode = (kind == 0).astype(np.int64)

    rows_u, rows_a, rows_coll_usd, rows_debt_usd = [], [], [], []

    def add(users, asset_idx, coll_usd, debt_usd):
        rows_u.append(users)
        rows_a.append(np.broadcast_to(asset_idx, users.shape).astype(np.int64))
        rows_coll_usd.append(coll_usd)
        rows_debt_usd.append(debt_usd)

    lt = np.array([a.lt for a in ASSETS]) / 1e4
    # eMode: wstETH -> WETH at LT 95%
    u = np.nonzero(kind == 0)[0]
    add(u, SYM["wstETH"], value[u], np.zeros(len(u)))
    add(u, SYM["WETH"], np.zeros(len(u)), value[u] * 0.95 / hf[u])
    # one collateral, one debt
    u = np.nonzero(kind == 1)[0]
    coll = rng.choice([SYM["WETH"], SYM["WBTC"], SYM["wstETH"], SYM["USDC"]], size=len(u), p=[0.5, 0.25, 0.15, 0.1])
    debt = np.where(coll == SYM["USDC"], SYM["WETH"], rng.choice([SYM["USDC"], SYM["USDT"], SYM["DAI"]], size=len(u),
                                                                 p=[0.55, 0.3, 0.15]))
    add(u, coll, value[u], np.zeros(len(u)))
    add(u, debt, np.zeros(len(u)), value[u] * lt[coll] / hf[u])
    # two collaterals (WETH + WBTC), two debts (USDC + USDT)
    u = np.nonzero(kind == 2)[0]
    w = rng.uniform(0.2, 0.8, len(u))
    c1, c2 = value[u] * w, value[u] * (1 - w)
    weighted = c1 * lt[SYM["WETH"]] + c2 * lt[SYM["WBTC"]]
    d = rng.uniform(0.3, 0.7, len(u))
    add(u, SYM["WETH"], c1, np.zeros(len(u)))
    add(u, SYM["WBTC"], c2, np.zeros(len(u)))
    add(u, SYM["USDC"], np.zeros(len(u)), weighted / hf[u] * d)
    add(u, SYM["USDT"], np.zeros(len(u)), weighted / hf[u] * (1 - d))

    users = np.concatenate(rows_u)
    assets = np.concatenate(rows_a)
    coll_usd, debt_usd = np.concatenate(rows_coll_usd), np.concatenate(rows_debt_usd)
    order = np.lexsort((assets, users))
    users, assets, coll_usd, debt_usd = users[order], assets[order], coll_usd[order], debt_usd[order]
    unit = np.array([10.0 ** a.decimals for a in ASSETS])
    li = np.array([x / RAY for x in liq_index])
    di = np.array([x / RAY for x in debt_index])
    float_a = np.trunc(coll_usd / p0[assets] * unit[assets] / li[assets])
    float_d = np.trunc(debt_usd / p0[assets] * unit[assets] / di[assets])
    scaled_a = [int(x) for x in float_a.tolist()]
    scaled_d = [int(x) for x in float_d.tolist()]
    collateral = coll_usd > 0
    user_config = _user_configuration(users, assets, collateral, debt_usd > 0, n)

    addrs = [asset_address(i) for i in range(len(ASSETS))]
    feeds = [_addr(0xF0, i + 1) for i in range(len(ASSETS))]
    markets = [{"chain_id": CHAIN_ID, "market": "core", "pool": POOL, "addresses_provider": _addr(0xC0, 1),
                "oracle": _addr(0xC0, 2), "pool_configurator": CONFIGURATOR, "data_provider": _addr(0xC0, 3),
                "pool_revision": 10, "aave_revision": "3.6", "block_number": to_block}]
    reserves = [{"market": "core", "pool": POOL, "asset": addrs[i], "symbol": a.symbol, "decimals": a.decimals,
                 "reserve_id": i, "a_token": _addr(0xA1, i + 1), "variable_debt_token": _addr(0xA2, i + 1),
                 "price_source": feeds[i], "source_kind": "feed", "base_feed": None, "ratio_provider": None,
                 "feed_aggregator": None, "base_feed_aggregator": None} for i, a in enumerate(ASSETS)]
    states = [{"market": "core", "pool": POOL, "asset": addrs[i], "block_number": start_block, "timestamp": start_ts,
               "configuration": str(encode_reserve_configuration(a.ltv, a.lt, a.bonus, a.decimals)),
               "liquidity_index": liq_index[i], "liquidity_rate": int(a.liquidity_rate * 1e9) * 10**18,
               "variable_borrow_index": debt_index[i], "variable_borrow_rate": int(a.borrow_rate * 1e9) * 10**18,
               "last_update_timestamp": start_ts - 86_400, "accrued_to_treasury": 0} for i, a in enumerate(ASSETS)]
    eth_bits = (1 << SYM["WETH"]) | (1 << SYM["wstETH"])
    emode_rows = [{"market": "core", "pool": POOL, "block_number": start_block, "category_id": 1, "ltv": 9300,
                   "liquidation_threshold": 9500, "liquidation_bonus": 10100, "collateral_bitmap": str(eth_bits),
                   "borrowable_bitmap": str(1 << SYM["WETH"]), "label": "ETH correlated", "price_source": None}]
    blocks = [{"block_number": start_block + k, "timestamp": start_ts + 12 * k} for k in range(checkpoints + 1)]
    feed_answers, oracle_prices = [], []
    for k in range(checkpoints + 1):
        for i in range(len(ASSETS)):
            price = int(prices[k, i])
            feed_answers.append({"block_number": start_block + k, "feed": feeds[i], "answer": price})
            oracle_prices.append({"block_number": start_block + k, "pool": POOL, "asset": addrs[i], "price": price})
    positions_rows = LazyRows(users, assets, scaled_a, scaled_d, collateral, emode, start_block, user_config)
    positions_rows.float_a, positions_rows.float_d = float_a, float_d
    if arrow:
        positions_rows = arrow_positions(positions_rows)
    return ReplayInputs(
        chain_id=CHAIN_ID, from_block=from_block, to_block=to_block, markets=markets, reserves=reserves,
        reserve_states_at_start=states, emode_categories=emode_rows, positions_at_start=positions_rows,  # type: ignore[arg-type]
        blocks=blocks, oracle_prices=oracle_prices, capo_states=[], feed_answers=feed_answers, events={},
        liquidation_transfers=[], input_files={},
    )
