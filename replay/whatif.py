"""What-if: the window judged again under counterfactual prices and risk parameters.

One exact replay of the window (:class:`TracingReplayer`, a :class:`~replay.replayer.Replayer`
that also keeps what it valued) gives a :class:`Trace`: at every checkpoint, every borrower's
positions, the reserves, the eMode categories and what every reported price was computed from
(:class:`~replay.prices.PriceComponents`); at every block end, the same price components (for a
delayed oracle). A :class:`WhatIf` then judges any number of :class:`Counterfactual` settings
over that trace without reading the warehouse or replaying events again:

- each ``LiquidationCall`` of the window, on the state the chain actually had just before it
  (earlier liquidations as they happened): would it have happened (health factor below 1 under
  the counterfactual reported prices, and ``executeLiquidationCall`` not reverting), was it
  wrongly eligible (health factor at least 1 under the true prices), and with the same
  ``debtToCover``, the collateral seized, the oracle loss, the bonus loss and the borrower's loss
  (:func:`~replay.verdicts.loss_parts`);
- every position that becomes liquidatable at any checkpoint;
- the bad debt at the end of the window: ``max(0, totalDebtBase - totalCollateralBase)`` of
  every position under the counterfactual reported prices.

Every amount is an exact integer. Whether a position is liquidatable is decided from a float
health factor only when that is provably right: the float value is within ``1e-12`` (relative)
of the exact sum of the same terms, and the protocol's integer rounding moves the exact health
factor by at most ``n + 2`` base units over ``n`` reserves, so a float health factor farther
from 1 than ``1e-9 + 8 (n + 2) / debt_base`` is on the same side of 1 as the exact one; anything
nearer is valued exactly with :mod:`replay.aave_math`.

Settings (``KEY=VALUE``; ``SYMBOL`` a reserve's symbol, ``MARKET`` a market's name; percentages
as ``5%``, ``-30%`` or basis points ``500bps``):

``reported_price=true``              the true price as the reported one (no mispricing)
``price_shift=PCT``                  every reported price moved by PCT (``SYMBOL.price_shift``: one asset)
``oracle_delay=N``                   the protocol sees at block b the price of the end of block b - N
``SYMBOL.snapshot_ratio=R``          a capped-ratio adapter's snapshot ratio (e.g. ``1.2``)
``SYMBOL.snapshot_timestamp=T``      its snapshot time (Unix seconds or ``2026-03-03T11:00:47``)
``SYMBOL.max_yearly_growth=PCT``     its maximum yearly ratio growth (e.g. ``8.85%``)
``[MARKET.]SYMBOL.liquidation_threshold=PCT``  a reserve's liquidation threshold
``[MARKET.]SYMBOL.liquidation_bonus=PCT``      a reserve's liquidation bonus (``5%`` = 105% of the debt)
``[MARKET.]SYMBOL.protocol_fee=PCT``           a reserve's liquidation protocol fee
``[MARKET.]emode.N.liquidation_threshold=PCT`` an eMode category's liquidation threshold
``[MARKET.]emode.N.liquidation_bonus=PCT``     an eMode category's liquidation bonus
``close_factor=PCT``                 the partial close factor (the protocol's 50%)

A capped-ratio setting replaces that parameter in every state the adapter has in the window.
"""

from __future__ import annotations

import numpy as np
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable, Mapping

from postmortem.errors import PostmortemError
from postmortem.replay.aave_math import (
    HEALTH_FACTOR_LIQUIDATION_THRESHOLD,
    RAY,
    EModeCategory,
    ReserveState,
    Revision,
    execute_liquidation_call,
    health_factor,
    rules_for,
)
from postmortem.replay.aave_math.generic_logic import get_user_reserve_liquidation_threshold
from postmortem.replay.prices import (
    CapOverrides,
    PriceComponents,
    counterfactual_price,
    is_capped,
    shift_price,
)
from postmortem.replay.replayer import Checkpoint, Replayer
from postmortem.replay.reserve_book import RiskOverrides

__all__ = [
    "KEYS", "Counterfactual", "PointResult", "Trace", "TracingReplayer", "WhatIf", "parse_setting",
    "parse_sweep", "sweep_values",
]

ONE = HEALTH_FACTOR_LIQUIDATION_THRESHOLD  # 1e18 (wad)
DEN = 10**36  # common denominator of exact sums: every token unit (10^decimals, decimals <= 36) divides it

# --- settings -------------------------------------------------------------------------------------

# param -> (target kind, value kind, help)
KEYS: dict[str, tuple[str, str, str]] = {
    "reported_price": ("global", "bool", "reported_price=true: the true price as the reported one"),
    "price_shift": ("global_or_symbol", "signed_bps", "price_shift=-5% (every asset) or wstETH.price_shift=-5%"),
    "oracle_delay": ("global", "blocks", "oracle_delay=3: the price of 3 blocks earlier"),
    "snapshot_ratio": ("symbol", "ratio", "wstETH.snapshot_ratio=1.2"),
    "snapshot_timestamp": ("symbol", "timestamp", "wstETH.snapshot_timestamp=2026-03-03T11:00:47"),
    "max_yearly_growth": ("symbol", "bps", "wstETH.max_yearly_growth=8.85%"),
    "liquidation_threshold": ("reserve_or_emode", "bps", "core.wstETH.liquidation_threshold=81% or emode.1.liquidation_threshold=95%"),
    "liquidation_bonus": ("reserve_or_emode", "bonus", "wstETH.liquidation_bonus=5% (105% of the debt)"),
    "protocol_fee": ("reserve", "bps", "wstETH.protocol_fee=10%"),
    "close_factor": ("global", "bps", "close_factor=50%"),
}

_KEYS_HELP = "; ".join(v[2] for v in KEYS.values())


def _fail_key(text: str, why: str) -> PostmortemError:
    return PostmortemError(f"--set {text!r}: {why}; keys are e.g. {_KEYS_HELP}")


@dataclass(frozen=True)
class Setting:
    """One parsed ``KEY=VALUE``: ``param``, its target and its value as an exact integer."""

    param: str
    target: tuple  # () | (symbol,) | (market or None, symbol) | (market or None, "emode", id)
    value: int
    text: str

    @property
    def key(self) -> str:
        return self.text.partition("=")[0]


def _value_to_int(kind: str, raw: str, what: str) -> int:
    raw = raw.strip()
    try:
        if kind == "bool":
            low = raw.lower()
            if low in ("true", "yes", "1", "on"):
                return 1
            if low in ("false", "no", "0", "off"):
                return 0
            raise ValueError
        if kind == "blocks":
            n = int(raw)
            if n < 0:
                raise ValueError
            return n
        if kind == "ratio":
            v = Decimal(raw) * 10**18
            if v <= 0:
                raise ValueError
            return int(v.to_integral_value(rounding="ROUND_FLOOR"))
        if kind == "timestamp":
            if raw.isdigit():
                return int(raw)
            dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return int(dt.timestamp())
        if kind in ("bps", "signed_bps", "bonus"):
            if raw.lower().endswith("bps"):
                bps = Decimal(raw[:-3])
            else:
                bps = Decimal(raw.rstrip("%")) * 100
            if bps != bps.to_integral_value():
                raise ValueError
            bps = int(bps)
            if kind == "signed_bps":
                if bps <= -10_000:
                    raise ValueError
                return bps
            if bps < 0 or bps > 10_000 and kind == "bps":
                raise ValueError
            return 10_000 + bps if kind == "bonus" else bps
    except (InvalidOperation, ValueError, OverflowError):
        pass
    examples = {"bool": "true or false", "blocks": "a whole number of blocks >= 0, e.g. 3",
                "ratio": "a positive decimal ratio, e.g. 1.2", "timestamp": "Unix seconds or 2026-03-03T11:00:47",
                "bps": "a percentage between 0% and 100% with at most 2 decimals, e.g. 8.85% or 885bps",
                "signed_bps": "a percentage above -100% with at most 2 decimals, e.g. -30%",
                "bonus": "a bonus percentage with at most 2 decimals, e.g. 5% (105% of the debt)"}
    raise PostmortemError(f"{what}: {raw!r} is not a valid value; give {examples[kind]}")


def format_value(param: str, value: int) -> str:
    """The exact integer value of ``param`` as a setting would write it."""
    kind = KEYS[param][1]
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("blocks", "timestamp"):
        return str(value)
    if kind == "ratio":
        return str(Decimal(value) / Decimal(10**18))
    if kind == "bonus":
        value -= 10_000
    return f"{Decimal(value) / 100}%"


def parse_setting(text: str, world: "World") -> Setting:
    """``KEY=VALUE`` -> :class:`Setting`, checked against the replayed markets (one sentence when not)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise _fail_key(text, "a setting is KEY=VALUE")
    return setting_from(key, raw, world, text)


def setting_from(key: str, raw: str, world: "World", text: str | None = None) -> Setting:
    text = text or f"{key}={raw}"
    parts = key.split(".")
    param = parts[-1].lower()
    if param not in KEYS:
        raise _fail_key(text, f"unknown KEY {key!r}")
    kind, value_kind, _ = KEYS[param]
    value = _value_to_int(value_kind, raw, f"--set {key}")
    rest = parts[:-1]
    if kind == "global" or (kind == "global_or_symbol" and not rest):
        if rest:
            raise _fail_key(text, f"{param} applies to the whole window and takes no asset or market")
        return Setting(param, (), value, text)
    if not rest:
        raise _fail_key(text, f"{param} needs an asset, e.g. {KEYS[param][2]}")
    market = None
    if len(rest) >= 2 and rest[0].lower() in world.markets and kind in ("reserve", "reserve_or_emode"):
        market, rest = rest[0].lower(), rest[1:]
    if rest and rest[0].lower() == "emode":
        if kind != "reserve_or_emode" or len(rest) != 2 or not rest[1].isdigit():
            raise _fail_key(text, f"{param} is not an eMode parameter, or the category is not a number")
        cat = int(rest[1])
        if not world.has_category(market, cat):
            raise PostmortemError(f"--set {key}: eMode category {cat} is not defined in "
                                  f"{market or 'the replayed markets'}; categories: {world.categories_text()}")
        return Setting(param, (market, "emode", cat), value, text)
    if len(rest) != 1:
        raise _fail_key(text, f"cannot read the target {'.'.join(rest)!r}")
    symbol = world.symbol(rest[0], market)
    if kind == "symbol":
        if not world.capped(symbol):
            raise PostmortemError(f"--set {key}: {symbol} is not priced by a capped-ratio adapter in these markets; "
                                  f"capped-ratio assets: {', '.join(sorted(world.capped_symbols)) or 'none'}")
        return Setting(param, (symbol,), value, text)
    if kind == "global_or_symbol":
        return Setting(param, (symbol,), value, text)
    return Setting(param, (market, symbol), value, text)


@dataclass
class World:
    """What settings may name: markets (name -> pool), reserve symbols, eMode categories."""

    markets: dict[str, str]
    symbols: dict[str, set[str]]  # symbol -> pools
    categories: dict[str, set[int]]  # pool -> category ids
    capped_symbols: set[str]

    def symbol(self, text: str, market: str | None) -> str:
        found = next((s for s in self.symbols if s.lower() == text.lower()), None)
        if found is None:
            raise PostmortemError(f"unknown asset {text!r}; the replayed reserves are {', '.join(sorted(self.symbols))}")
        if market is not None and self.markets[market] not in self.symbols[found]:
            raise PostmortemError(f"{found} is not a reserve of market {market}; pick another market or drop it")
        return found

    def capped(self, symbol: str) -> bool:
        return symbol in self.capped_symbols

    def has_category(self, market: str | None, cat: int) -> bool:
        pools = [self.markets[market]] if market else list(self.categories)
        return any(cat in self.categories.get(p, ()) for p in pools)

    def categories_text(self) -> str:
        name = {p: m for m, p in self.markets.items()}
        return "; ".join(f"{name.get(p, p)}: {', '.join(map(str, sorted(c)))}" for p, c in sorted(self.categories.items()))


class Counterfactual:
    """A set of :class:`Setting` s, as the price and risk changes they stand for."""

    def __init__(self, settings: Iterable[Setting] = (), world: World | None = None):
        self.settings = list(settings)
        self.true_as_reported = False
        self.delay = 0
        self.shift_all = 0
        self.shift: dict[str, int] = {}
        caps: dict[str, dict[str, int]] = {}
        reserves: dict[tuple, dict[str, int]] = {}
        emode: dict[tuple, dict[str, int]] = {}
        close_factor = None
        pool_of = (world.markets if world else {})
        for s in self.settings:
            if s.param == "reported_price":
                self.true_as_reported = bool(s.value)
            elif s.param == "oracle_delay":
                self.delay = s.value
            elif s.param == "price_shift":
                if s.target:
                    self.shift[s.target[0]] = s.value
                else:
                    self.shift_all = s.value
            elif s.param in ("snapshot_ratio", "snapshot_timestamp", "max_yearly_growth"):
                caps.setdefault(s.target[0], {})[s.param] = s.value
            elif s.param == "close_factor":
                close_factor = s.value
            elif len(s.target) == 3:
                market, _, cat = s.target
                emode.setdefault((pool_of.get(market) if market else None, cat), {})[s.param] = s.value
            else:
                market, symbol = s.target
                reserves.setdefault((pool_of.get(market) if market else None, symbol), {})[s.param] = s.value
        self.caps = {sym: CapOverrides(snapshot_ratio=c.get("snapshot_ratio"),
                                       snapshot_timestamp=c.get("snapshot_timestamp"),
                                       max_yearly_growth_bps=c.get("max_yearly_growth")) for sym, c in caps.items()}
        self._reserves_by_symbol = reserves
        self.emode_overrides = emode
        self.close_factor = close_factor

    def risk(self, asset_of: Callable[[str | None, str], list[tuple[str | None, str]]]) -> RiskOverrides:
        reserves: dict = {}
        for (pool, symbol), params in self._reserves_by_symbol.items():
            for key in asset_of(pool, symbol):
                reserves.setdefault(key, {}).update(params)
        return RiskOverrides(reserves, self.emode_overrides, self.close_factor)

    def describe(self) -> str:
        return ", ".join(s.text for s in self.settings) or "as it happened"

    def with_setting(self, setting: Setting, world: World | None) -> "Counterfactual":
        kept = [s for s in self.settings if (s.param, s.target) != (setting.param, setting.target)]
        return Counterfactual([*kept, setting], world)


def parse_sweep(text: str, world: World) -> tuple[Setting, Setting, int]:
    """``KEY=START:STOP:STEPS`` -> (setting at START, setting at STOP, STEPS)."""
    key, sep, spec = text.partition("=")
    parts = spec.split(":") if sep else []
    if len(parts) != 3:
        # a timestamp written with colons: KEY=START:STOP:STEPS is split from the right
        pieces = spec.rsplit(":", 1) if sep else []
        if len(pieces) != 2 or spec.count(":") < 2:
            raise PostmortemError(f"--sweep {text!r} is not KEY=START:STOP:STEPS; e.g. --sweep wstETH.snapshot_ratio=1.18:1.24:61")
    raw_steps = spec.rsplit(":", 1)[1].strip()
    body = spec.rsplit(":", 1)[0]
    if not raw_steps.isdigit() or int(raw_steps) < 1:
        raise PostmortemError(f"--sweep {text!r}: STEPS must be a whole number of points >= 1 (got {raw_steps!r}); "
                              "e.g. --sweep oracle_delay=0:10:11")
    start_raw, stop_raw = _split_range(body, text)
    a = setting_from(key.strip(), start_raw, world)
    b = setting_from(key.strip(), stop_raw, world)
    if a.param == "reported_price":
        raise PostmortemError("--sweep reported_price makes no sense (it is true or false); use --set reported_price=true")
    return a, b, int(raw_steps)


def _split_range(body: str, text: str) -> tuple[str, str]:
    if body.count(":") == 1:
        x, y = body.split(":")
        return x, y
    # ISO timestamps hold colons: split at the colon that leaves two parseable halves
    for i, ch in enumerate(body):
        if ch == ":" and body[:i].count(":") in (0, 2) and body[i + 1:].count(":") in (0, 2):
            return body[:i], body[i + 1:]
    raise PostmortemError(f"--sweep {text!r} is not KEY=START:STOP:STEPS")


def sweep_values(start: int, stop: int, steps: int) -> list[int]:
    """``steps`` integers evenly from ``start`` to ``stop`` (both included), floored."""
    if steps == 1:
        return [start]
    return [start + (stop - start) * i // (steps - 1) for i in range(steps)]


# --- the trace ------------------------------------------------------------------------------------


@dataclass
class PoolState:
    """One pool at one checkpoint, as the replay valued it."""

    pool: str
    revision: Revision
    reserves: dict[str, ReserveState]
    emode: dict[int, EModeCategory]
    components: dict[str, PriceComponents]
    reported: dict[str, int]
    true: dict[str, int]
    users: list[tuple[str, tuple, int]]  # (user, positions, eMode id) of every borrower


@dataclass
class CheckpointState:
    checkpoint: Checkpoint
    pools: dict[str, PoolState]
    liquidation: dict | None = None
    liquidated_positions: tuple = ()
    liquidated_emode: int = 0


@dataclass
class Trace:
    """What one replay of the window valued, kept for judging counterfactuals (see the module)."""

    from_block: int
    to_block: int
    checkpoints: list[CheckpointState]
    block_ends: list[tuple[int, int, dict[tuple[str, str], PriceComponents]]]
    market_of: dict[str, str]
    symbol: dict[tuple[str, str], str]
    eth_asset: str | None
    verdicts: list[dict]
    summary: dict = field(default_factory=dict)

    def world(self) -> World:
        symbols: dict[str, set[str]] = {}
        for (pool, _asset), sym in self.symbol.items():
            symbols.setdefault(sym, set()).add(pool)
        categories: dict[str, set[int]] = {}
        capped = set()
        if self.checkpoints:
            for pool, ps in self.checkpoints[0].pools.items():
                categories[pool] = set(ps.emode)
                capped |= {self.symbol[(pool, a)] for a, c in ps.components.items() if c.kind == "capped_ratio"}
        return World(markets={m.lower(): p for p, m in self.market_of.items()}, symbols=symbols,
                     categories=categories, capped_symbols=capped)

    def assets_of(self, pool: str | None, symbol: str) -> list[tuple[str | None, str]]:
        return [(p, a) for (p, a), s in self.symbol.items() if s == symbol and (pool is None or p == pool)]


class TracingReplayer(Replayer):
    """The replayer, also keeping every checkpoint's state and every block end's price components."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.trace_checkpoints: list[CheckpointState] = []
        self.block_ends: list[tuple[int, int, dict]] = []

    def _components(self, ts: int) -> dict[tuple[str, str], PriceComponents]:
        return {key: PriceComponents.of(self.prices, key[0], key[1], ts) for key in self.prices.sources}

    def _on_start(self, blk: int) -> None:
        self.block_ends.append((blk, self._ts(blk), self._components(self._ts(blk))))
        super()._on_start(blk)

    def _on_block_end(self, blk: int) -> None:
        self.block_ends.append((blk, self._ts(blk), self._components(self._ts(blk))))
        super()._on_block_end(blk)

    def _evaluate_pool(self, cp, pool, forced, liquidation) -> None:
        if not self.trace_checkpoints or self.trace_checkpoints[-1].checkpoint is not cp:
            self.trace_checkpoints.append(CheckpointState(cp, {}))
        state = self.trace_checkpoints[-1]
        rev = self.revisions[pool]
        reserves = self._reserves_at(pool, rev, cp.timestamp)
        reported, true = self.prices.prices(pool, cp.timestamp, cp.block_number)
        users = []
        for (p, user) in self.book.users:
            if p != pool:
                continue
            positions = self.book.positions(pool, user)
            if any(x.borrowing for x in positions):
                users.append((user, positions, self.book.emode(pool, user)))
        comps = {a: PriceComponents.of(self.prices, pool, a, cp.timestamp)
                 for (p, a) in self.prices.sources if p == pool}
        state.pools[pool] = PoolState(pool, rev, reserves, dict(self.reserves.emode[pool]), comps, reported, true,
                                      users)
        if liquidation is not None:
            state.liquidation = liquidation
            state.liquidated_positions = self.book.positions(pool, liquidation["user"])
            state.liquidated_emode = self.book.emode(pool, liquidation["user"])
        super()._evaluate_pool(cp, pool, forced, liquidation)


def trace_window(inputs, true_models, *, eth_asset: str | None, health_band: float = 1.10) -> Trace:
    """Replay ``inputs`` once, keeping the :class:`Trace`."""
    from postmortem.replay.positions import PositionError

    r = TracingReplayer(inputs, dict(true_models or {}), eth_asset=eth_asset, health_band=health_band)
    try:
        r.run()
    except PositionError as exc:
        raise PostmortemError(f"the positions do not replay consistently ({exc}); re-ingest the range") from None
    except KeyError as exc:
        raise PostmortemError(f"the warehouse lacks an input the replay needs ({exc.args[0]}); re-ingest the range") from None
    verdicts = [{k: v for k, v in row.items() if not k.startswith("_")} for row in r.verdict_rows]
    return Trace(inputs.from_block, inputs.to_block, r.trace_checkpoints, r.block_ends, dict(r.market_of),
                 dict(r.symbol), r.eth_asset, verdicts)


# --- judging a counterfactual ---------------------------------------------------------------------


@dataclass
class PointResult:
    """One counterfactual judged over the window: totals and one row per liquidation."""

    counterfactual: str
    totals: dict
    raw_liquidations: list[dict]
    liquidatable: set[tuple[str, str]]

    @property
    def liquidations(self) -> list[dict]:
        """One row per LiquidationCall (the whatif_results columns)."""
        return [{k: v for k, v in r.items() if not k.startswith("_")} for r in self.raw_liquidations]


class _Row:
    __slots__ = ("cp", "pool", "user", "positions", "emode", "assets", "coll", "debt", "using")

    def __init__(self, cp: int, pool: str, user: str, positions: tuple, emode: int, reserves: Mapping[str, ReserveState]):
        self.cp, self.pool, self.user, self.positions, self.emode = cp, pool, user, positions, emode
        self.assets = tuple(p.asset for p in positions)
        coll, debt, using = [], [], []
        for p in positions:
            r = reserves[p.asset]
            coll.append(p.scaled_a_token_balance * r.liquidity_index_ray / RAY / r.asset_unit)
            debt.append((p.scaled_variable_debt * r.variable_borrow_index_ray / RAY / r.asset_unit) if p.borrowing else 0.0)
            using.append(bool(p.using_as_collateral))
        self.coll, self.debt, self.using = coll, debt, using


@dataclass(frozen=True)
class _NoLiquidation:
    """Stands for a liquidation not simulated because the account was provably healthy."""

    health_factor_wad: int
    reverted: bool = True
    revert_reason: str = "HealthFactorNotBelowThreshold"


class WhatIf:
    """Judges counterfactuals over one :class:`Trace` (see the module docstring)."""

    def __init__(self, trace: Trace):
        self.trace = trace
        self.world = trace.world()
        self.rows: list[_Row] = []
        for i, cps in enumerate(trace.checkpoints):
            for pool, ps in cps.pools.items():
                for user, positions, emode in ps.users:
                    self.rows.append(_Row(i, pool, user, positions, emode, ps.reserves))
        self.end = len(trace.checkpoints) - 1
        self._block_end_blocks = [b for b, _ts, _c in trace.block_ends]
        # the float screen's matrices: one row per (checkpoint, borrower), one column per (pool, asset)
        self.cols = {key: k for k, key in enumerate(sorted(trace.symbol))}
        n, m = len(self.rows), len(self.cols)
        self.C = np.zeros((n, m))
        self.D = np.zeros((n, m))
        self.row_cp = np.array([r.cp for r in self.rows], dtype=np.int64)
        self.n_assets = np.array([len(r.assets) for r in self.rows], dtype=np.float64)
        self.at_end = self.row_cp == self.end
        for i, r in enumerate(self.rows):
            for k, a in enumerate(r.assets):
                j = self.cols[(r.pool, a)]
                if r.using[k]:
                    self.C[i, j] = r.coll[k]
                self.D[i, j] = r.debt[k]
        self._lt_rows: dict = {}
        self._memo: dict = {}
        self.row_of = {(r.cp, r.pool, r.user): k for k, r in enumerate(self.rows)}
        self._P0 = True
        self._P0_pool: dict[tuple[int, str], np.ndarray] = {}
        for i, cps in enumerate(trace.checkpoints):
            for pool, ps in cps.pools.items():
                row = np.zeros(len(self.cols))
                for a, price in ps.reported.items():
                    row[self.cols[(pool, a)]] = float(price)
                self._P0_pool[(i, pool)] = row
        for cps in trace.checkpoints[:1]:
            for ps in cps.pools.values():
                for a, r in ps.reserves.items():
                    if DEN % r.asset_unit:
                        raise PostmortemError(f"reserve {a} has {len(str(r.asset_unit)) - 1} decimals; what-if handles "
                                              "at most 36")
        self.liquidated = {(v["pool"], v["user"]) for v in trace.verdicts}
        self.exact = 0
        self._lt_cache: dict = {}

    # ---- prices under a counterfactual

    def reported(self, cf: Counterfactual, i: int, pool: str) -> dict[str, int]:
        cps = self.trace.checkpoints[i]
        ps = cps.pools[pool]
        if cf.true_as_reported:
            base = dict(ps.true)
        elif not cf.delay and not cf.caps:
            base = ps.reported  # as replayed (equal to the components' price without overrides)
        elif not cf.delay:
            base = dict(ps.reported)
            for a, c in ps.components.items():
                cap = cf.caps.get(self.trace.symbol[(pool, a)])
                if cap is not None and c.kind == "capped_ratio":
                    base[a] = counterfactual_price(c, cps.checkpoint.timestamp, cap)
        else:
            comps, ts = ps.components, cps.checkpoint.timestamp
            if cf.delay:
                j = bisect_right(self._block_end_blocks, cps.checkpoint.block_number - cf.delay) - 1
                _b, ts, allc = self.trace.block_ends[max(j, 0)]
                comps = {a: allc[(pool, a)] for a in ps.components}
            base = {}
            for a, c in comps.items():
                cap = cf.caps.get(self.trace.symbol[(pool, a)])
                base[a] = counterfactual_price(c, ts, cap)
        if cf.shift_all or cf.shift:
            base = {a: shift_price(p, cf.shift.get(self.trace.symbol[(pool, a)], cf.shift_all)) for a, p in base.items()}
        return base

    def capped_anywhere(self, symbol: str, cap: CapOverrides) -> tuple[int, int] | None:
        """The first (block, timestamp) at which ``symbol``'s adapter is capped under ``cap``, or None."""
        for cps in self.trace.checkpoints:
            for pool, ps in cps.pools.items():
                for a, c in ps.components.items():
                    if self.trace.symbol[(pool, a)] == symbol and is_capped(c, cps.checkpoint.timestamp, cap):
                        return cps.checkpoint.block_number, cps.checkpoint.timestamp
        for blk, ts, comps in self.trace.block_ends:
            if blk < self.trace.from_block:
                continue
            for (pool, a), c in comps.items():
                if self.trace.symbol[(pool, a)] == symbol and is_capped(c, ts, cap):
                    return blk, ts
        return None

    def boundary_snapshot_ratio(self, symbol: str, base: CapOverrides | None = None) -> dict:
        """The smallest snapshot ratio (1e18 units) that keeps ``symbol`` uncapped at every checkpoint
        and block end of the window (with ``base``'s other cap settings), found exactly by bisection,
        and where the ratio just below it is first capped."""
        base = base or CapOverrides()

        def cap(s: int) -> CapOverrides:
            return CapOverrides(snapshot_ratio=s, snapshot_timestamp=base.snapshot_timestamp,
                                max_yearly_growth_bps=base.max_yearly_growth_bps)

        hi = 1
        while self.capped_anywhere(symbol, cap(hi)) is not None:
            hi *= 2
            if hi > 10**30:
                raise PostmortemError(f"{symbol} stays capped at any snapshot ratio in this window")
        lo = 0  # capped (or meaningless) at lo, uncapped at hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.capped_anywhere(symbol, cap(mid)) is None:
                hi = mid
            else:
                lo = mid
        where = self.capped_anywhere(symbol, cap(hi - 1))
        return {"symbol": symbol, "snapshot_ratio": hi, "snapshot_ratio_text": format_value("snapshot_ratio", hi),
                "capped_below_at_block": where[0] if where else None,
                "capped_below_at_timestamp": where[1] if where else None}

    # ---- judging

    def _lt(self, pool: str, rev: Revision, reserves: Mapping[str, ReserveState], cat: EModeCategory | None,
            asset: str) -> int:
        key = (id(reserves), pool, cat, asset)
        got = self._lt_cache.get(key)
        if got is None:
            rules = rules_for(rev)
            reserve = reserves[asset]
            got = get_user_reserve_liquidation_threshold(rules, reserve, cat)
            if rules.collateral_requires_reserve_liquidation_threshold and reserve.liquidation_threshold_bps == 0:
                got = 0
            self._lt_cache[key] = got
        return got

    def _lt_matrix(self, risk: RiskOverrides, at, category) -> np.ndarray:
        """Liquidation thresholds (bps) per screen row and column under ``risk`` (cached per setting)."""
        key = risk.key()
        got = self._lt_rows.get(key)
        if got is not None:
            return got
        lt = np.zeros_like(self.C)
        for i, row in enumerate(self.rows):
            ps = self.trace.checkpoints[row.cp].pools[row.pool]
            _, reserves = at(row.cp, row.pool)
            cat = category(row.cp, row.pool, row.emode)
            for k, a in enumerate(row.assets):
                if row.using[k]:
                    lt[i, self.cols[(row.pool, a)]] = self._lt(row.pool, ps.revision, reserves, cat, a)
        if len(self._lt_rows) > 64:
            self._lt_rows.clear()
        self._lt_rows[key] = lt
        return lt

    def evaluate(self, cf: Counterfactual) -> PointResult:
        tr = self.trace
        risk = cf.risk(tr.assets_of)
        prices: dict[tuple[int, str], dict[str, int]] = {}
        reserves_of: dict[tuple[int, str], dict[str, ReserveState]] = {}
        emode_of: dict[tuple[int, str, int], EModeCategory | None] = {}
        self._lt_cache = {}

        def at(i: int, pool: str):
            key = (i, pool)
            if key not in prices:
                ps = tr.checkpoints[i].pools[pool]
                prices[key] = self.reported(cf, i, pool)
                reserves_of[key] = risk.apply_reserves(pool, ps.reserves) if risk else ps.reserves
            return prices[key], reserves_of[key]

        def category(i: int, pool: str, cat_id: int):
            key = (i, pool, cat_id)
            if key not in emode_of:
                cat = tr.checkpoints[i].pools[pool].emode.get(cat_id) if cat_id else None
                emode_of[key] = risk.apply_emode(pool, cat) if risk else cat
            return emode_of[key]

        # every borrower at every checkpoint: liquidatable under the counterfactual? (the float
        # screen decides only where it provably can; the rest is valued exactly)
        P = np.zeros((len(tr.checkpoints), len(self.cols)))
        for i, cps in enumerate(tr.checkpoints):
            for pool in cps.pools:
                reported, _ = at(i, pool)
                if reported is tr.checkpoints[i].pools[pool].reported and self._P0 is not None:
                    P[i] = P[i] + self._P0_pool[(i, pool)]  # as replayed: the row computed once
                    continue
                for a, price in reported.items():
                    P[i, self.cols[(pool, a)]] = float(price)
        LT = self._lt_matrix(risk, at, category)
        Prow = P[self.row_cp]
        num = (self.C * LT * Prow).sum(axis=1) / 10_000
        den = (self.D * Prow).sum(axis=1)
        coll_value = (self.C * Prow).sum(axis=1)
        has_debt = den > 0
        safe_den = np.where(has_debt, den, 1.0)
        hf = num / safe_den
        slack = 8 * (self.n_assets + 2)
        band = 1e-9 + slack / safe_den
        below = has_debt & (hf < 1 - band)
        unsure = has_debt & ((np.abs(hf - 1) <= band) | (self.at_end & (coll_value < den * (1 + 1e-9) + slack)))
        liquidatable: set[tuple[str, str]] = {(self.rows[i].pool, self.rows[i].user) for i in np.flatnonzero(below & ~unsure)}
        bad_debt_base = 0
        for i in np.flatnonzero(unsure):
            row = self.rows[i]
            ps = tr.checkpoints[row.cp].pools[row.pool]
            reported, reserves = at(row.cp, row.pool)
            acc = health_factor(ps.revision, row.positions, reserves, reported, category(row.cp, row.pool, row.emode),
                                tr.checkpoints[row.cp].checkpoint.timestamp)
            self.exact += 1
            if acc.health_factor_wad < ONE:
                liquidatable.add((row.pool, row.user))
            if row.cp == self.end:
                bad_debt_base += max(0, acc.total_debt_base - acc.total_collateral_base)

        # each LiquidationCall of the window
        rows = []
        totals = {k: 0 for k in ("liquidations", "would_liquidate", "prevented", "wrongly_eligible",
                                 "eligible_anyway")}
        # exact sums as integers over DEN (every token unit, a power of ten up to 1e18, divides it)
        sums = {k: 0 for k in ("collateral_seized", "oracle_loss", "bonus_loss", "borrower_loss")}
        eth_sums = {k: 0 for k in ("oracle_loss", "bonus_loss", "borrower_loss")}
        eth_missing = False
        for i, cps in enumerate(tr.checkpoints):
            liq = cps.liquidation
            if liq is None:
                continue
            pool, user = liq["address"], liq["user"]
            ps = cps.pools[pool]
            reported, reserves = at(i, pool)
            cat = category(i, pool, cps.liquidated_emode)
            ts = cps.checkpoint.timestamp
            positions = cps.liquidated_positions
            rkey = risk.key()
            hf_true = self._memo.get((i, rkey))
            if hf_true is None:
                hf_true = health_factor(ps.revision, positions, reserves, ps.true, cat, ts).health_factor_wad
                self._memo[(i, rkey)] = hf_true
                self.exact += 1
            coll, debt = liq["collateral_asset"], liq["debt_asset"]
            d = int(liq["debt_to_cover"])
            skey = (i, rkey, tuple(reported[p.asset] for p in positions))
            sim = self._memo.get(skey)
            r = self.row_of.get((i, pool, user))
            if sim is None and r is not None and not below[r] and not unsure[r]:
                # provably healthy under these prices: the exact health factor, no liquidation to simulate
                acc = health_factor(ps.revision, positions, reserves, reported, cat, ts)
                self.exact += 1
                sim = _NoLiquidation(acc.health_factor_wad)
                self._memo[skey] = sim
            if sim is None:
                # executeLiquidationCall values the account first: its health factor is the counterfactual one
                sim = execute_liquidation_call(
                    ps.revision, positions, reserves, reported, cat, ts, collateral_asset=coll, debt_asset=debt,
                    debt_to_cover=d, receive_a_token=bool(liq["receive_a_token"]),
                    liquidator_is_borrower=liq["liquidator"] == user, **risk.rule_overrides())
                self.exact += 1
                if len(self._memo) > 200_000:
                    self._memo.clear()
                self._memo[skey] = sim
            hf_cf = sim.health_factor_wad
            would = hf_cf < ONE and not sim.reverted
            totals["liquidations"] += 1
            eth = ps.true.get(tr.eth_asset) if tr.eth_asset else None
            rkey2 = (skey, "row")
            row = self._memo.get(rkey2)
            if row is None:
                row = self._liquidation_row(tr, i, ps, liq, reserves, reported, sim, would, hf_cf, hf_true, eth)
                self._memo[rkey2] = row
            if would:
                totals["would_liquidate"] += 1
                totals["wrongly_eligible" if row["wrongly_eligible"] else "eligible_anyway"] += 1
                sums["collateral_seized"] += row["_seized_num"]
                # One number per concept (the glossary): the oracle loss of every liquidation, its
                # protocol-fee part included; the bonus loss of the wrongly eligible ones only.
                parts = {"oracle_loss": ("oracle_loss", "fee_oracle_loss"), "borrower_loss": ("borrower_loss",),
                         "bonus_loss": ("bonus_loss",) if row["wrongly_eligible"] else ()}
                for name, names in parts.items():
                    for part in names:
                        sums[name] += row[f"_{part}_num"]
                        if row[f"{part}_eth_wei"] is None:
                            eth_missing = True
                        else:
                            eth_sums[name] += row[f"{part}_eth_wei"]
            else:
                totals["prevented"] += 1
            rows.append(row)
        end_ps = tr.checkpoints[self.end].pools if tr.checkpoints else {}
        eth_end = next((ps.true.get(tr.eth_asset) for ps in end_ps.values() if tr.eth_asset in ps.true), None)
        totals.update({
            "liquidatable_positions": len(liquidatable),
            "liquidatable_not_liquidated": len(liquidatable - self.liquidated),
            "collateral_seized_base": sums["collateral_seized"] // DEN,
            "oracle_loss_base": sums["oracle_loss"] // DEN,
            "bonus_loss_base": sums["bonus_loss"] // DEN,
            "borrower_loss_base": sums["borrower_loss"] // DEN,
            "oracle_loss_eth_wei": None if eth_missing else eth_sums["oracle_loss"],
            "bonus_loss_eth_wei": None if eth_missing else eth_sums["bonus_loss"],
            "borrower_loss_eth_wei": None if eth_missing else eth_sums["borrower_loss"],
            "bad_debt_base": bad_debt_base,
            "bad_debt_eth_wei": bad_debt_base * 10**18 // eth_end if eth_end else None,
        })
        return PointResult(cf.describe(), totals, rows, liquidatable)

    def _liquidation_row(self, tr, i, ps, liq, reserves, reported, sim, would, hf_cf, hf_true, eth) -> dict:
        pool, user = liq["address"], liq["user"]
        coll, debt = liq["collateral_asset"], liq["debt_asset"]
        row = {
            "market": tr.market_of[pool], "pool": pool, "block_number": int(liq["block_number"]),
            "transaction_index": int(liq["transaction_index"]), "log_index": int(liq["log_index"]),
            "user": user, "liquidator": liq["liquidator"], "collateral_asset": coll,
            "collateral_symbol": tr.symbol.get((pool, coll)), "debt_asset": debt,
            "debt_symbol": tr.symbol.get((pool, debt)), "debt_to_cover": int(liq["debt_to_cover"]),
            "liquidated_collateral_amount": int(liq["liquidated_collateral_amount"]),
            "hf_counterfactual": hf_cf, "hf_true": hf_true,
            "collateral_price_counterfactual": reported[coll], "collateral_price_true": ps.true[coll],
            "would_liquidate": would, "revert_reason": sim.revert_reason if sim.reverted else None,
            "wrongly_eligible": would and hf_true >= ONE,
            "debt_repaid_counterfactual": 0, "collateral_seized_counterfactual": 0, "protocol_fee_counterfactual": 0,
            "_seized_num": 0,
        }
        for name in ("oracle_loss", "fee_oracle_loss", "bonus_loss", "borrower_loss"):
            row[f"{name}_base"], row[f"{name}_eth_wei"], row[f"_{name}_num"] = 0, 0, 0
        if not would:
            return row
        c, f, d = sim.liquidated_collateral_amount, sim.protocol_fee_transferred, sim.actual_debt_to_liquidate
        cu, du = reserves[coll].asset_unit, reserves[debt].asset_unit
        pr, pt, qr, qt = reported[coll], ps.true[coll], reported[debt], ps.true[debt]
        sc, sd = DEN // cu, DEN // du  # exact: units are powers of ten up to 1e36 (checked in __init__)
        nums = {  # numerators over DEN, as verdicts.loss_parts defines them
            "oracle_loss": c * (pt - pr) * sc,
            "fee_oracle_loss": f * (pt - pr) * sc,
            "bonus_loss": (c + f) * pr * sc - d * qr * sd,
            "borrower_loss": (c + f) * pt * sc - d * qt * sd,
        }
        row.update(debt_repaid_counterfactual=d, collateral_seized_counterfactual=c + f, protocol_fee_counterfactual=f,
                   _seized_num=(c + f) * pt * sc)
        for name, n in nums.items():
            row[f"_{name}_num"] = n
            row[f"{name}_base"] = n // DEN
            row[f"{name}_eth_wei"] = n * 10**18 // (DEN * eth) if eth else None
        return row


# --- loading --------------------------------------------------------------------------------------


@dataclass
class Loaded:
    """An incident's replay inputs as ``replay()`` reads them, and its one replay trace."""

    incident_id: str
    chain_id: int
    params: dict
    input_files: dict
    trace: Trace
    mispriced: list[str]  # symbols the incident file declares a true price for
    models: dict = field(default_factory=dict)
    window: tuple[int, int] = (0, 0)  # the ingested window (before any narrowing)

    def replay_run_id(self) -> str:
        """The run id ``postmortem replay`` gives the same inputs (what this compares against)."""
        from postmortem.replay.engine import DEFAULT_HEALTH_BAND, replay_run_id

        return replay_run_id(self.incident_id, {**self.params, "health_band": DEFAULT_HEALTH_BAND}, self.models,
                             self.input_files)


def load(warehouse_root, incident_id: str, *, from_block: int | None = None, to_block: int | None = None,
         devchain_dir=None, true_price_overrides=None) -> Loaded:
    """Read the incident's inputs from the warehouse once and replay them into a :class:`Trace`
    (the same window, pools, true-price models and ETH asset as ``postmortem replay``)."""
    from pathlib import Path

    from postmortem.incidents import incident_file
    from postmortem.replay.engine import DEFAULT_HEALTH_BAND, incident_window, resolve_true_models

    root = Path(warehouse_root)
    raw, incident_path = incident_file(incident_id)
    w = incident_window(root, incident_id, raw, devchain_dir=devchain_dir)
    a, b = w.ingested
    if to_block is not None and not a - 1 <= int(to_block) <= b:
        raise PostmortemError(f"block {to_block} is outside the window of {incident_id} ({a - 1}..{b}, the start "
                              f"state included); give --at between {a - 1} and {b}")
    if to_block is not None and int(to_block) == a - 1:
        to_block = a  # the start state is checkpoint 0 of any window
    w = w.narrowed(from_block, to_block)
    pools, a, b, chain_id = w.pools, w.from_block, w.to_block, w.chain_id
    models = resolve_true_models(raw.get("true_price"), true_price_overrides, incident_path.parent)
    inputs, eth_asset = w.inputs()
    trace = trace_window(inputs, models, eth_asset=eth_asset, health_band=DEFAULT_HEALTH_BAND)
    params = {"incident_id": incident_id, "from_block": a, "to_block": b, "pools": pools, "chain_id": chain_id,
              "true_price": {s: m.describe() for s, m in models.items()}, "eth_asset": eth_asset}
    return Loaded(incident_id, chain_id, params, dict(inputs.input_files), trace, sorted(models), dict(models),
                  w.ingested)


# --- sweeps ---------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """A grid of one KEY: the values (exact integers), each point's result, and the boundary."""

    start: Setting
    values: list[int]
    points: list[PointResult]
    boundary_index: int | None
    boundary: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.start.key

    def value_text(self, i: int) -> str:
        return format_value(self.start.param, self.values[i])


_WORKER: WhatIf | None = None


def _evaluate_chunk(args) -> list[PointResult]:
    settings, world = args
    return [_WORKER.evaluate(Counterfactual(s, world)) for s in settings]


def run_sweep(wi: WhatIf, base: list[Setting], start: Setting, stop: Setting, steps: int, *,
              workers: int = 1, progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Judge ``steps`` counterfactuals from ``start`` to ``stop`` (each with the ``base`` settings).

    The boundary: for a snapshot ratio, the exact smallest ratio keeping the asset uncapped at
    every checkpoint and block end (bisection), and the first grid point at or above it; for any
    other KEY, the last grid point (from the start) whose result equals the window as it
    happened (e.g. the largest oracle delay that changes nothing), when the first does.
    ``workers`` > 1 splits the grid over forked processes (same results, in order).
    """
    global _WORKER
    values = sweep_values(start.value, stop.value, steps)
    per_point = [[*[s for s in base if (s.param, s.target) != (start.param, start.target)],
                  Setting(start.param, start.target, v, f"{start.key}={format_value(start.param, v)}")] for v in values]
    points: list[PointResult] = []
    chunk = max(1, min(50, steps // max(workers, 1) // 4 or 1))
    batches = [per_point[i:i + chunk] for i in range(0, len(per_point), chunk)]
    if workers > 1 and steps >= 100:
        import multiprocessing as mp

        _WORKER = wi
        try:
            ctx = mp.get_context("fork")
            with ctx.Pool(workers) as pool:
                for got in pool.imap(_evaluate_chunk, [(b, wi.world) for b in batches]):
                    points.extend(got)
                    if progress:
                        progress(len(points), steps)
        finally:
            _WORKER = None
    else:
        for b in batches:
            points.extend(wi.evaluate(Counterfactual(s, wi.world)) for s in b)
            if progress:
                progress(len(points), steps)
    boundary: dict = {}
    index = None
    if start.param == "snapshot_ratio":
        caps = Counterfactual(base, wi.world).caps.get(start.target[0], CapOverrides())
        boundary = wi.boundary_snapshot_ratio(start.target[0], caps)
        above = [i for i, v in enumerate(values) if v >= boundary["snapshot_ratio"]]
        index = min(above, key=lambda i: values[i]) if above else None
        boundary["meaning"] = (f"the smallest {start.key} that keeps {start.target[0]} uncapped at every checkpoint "
                               "and block end of the window")
    else:
        actual = wi.evaluate(Counterfactual([s for s in base if (s.param, s.target) != (start.param, start.target)],
                                            wi.world)).totals
        same = [p.totals == actual for p in points]
        if same and same[0]:
            index = 0
            while index + 1 < len(same) and same[index + 1]:
                index += 1
            boundary = {"value": values[index], "value_text": format_value(start.param, values[index]),
                        "meaning": f"the last grid value of {start.key} from {format_value(start.param, values[0])} "
                                   "that changes nothing against the window as it happened"}
    return SweepResult(start, values, points, index, boundary)


def load_window(warehouse_root, incident_id: str, *, devchain_dir=None) -> tuple[int, int]:
    """The incident's ingested window ``(from_block, to_block)`` (one sentence when there is none)."""
    from pathlib import Path

    from postmortem.incidents import load_incident
    from postmortem.replay.inputs import ingested_window

    root = Path(warehouse_root)
    if not (root / "catalog.duckdb").exists():
        raise PostmortemError(f"the warehouse at {root} holds no data yet; run `postmortem ingest --incident {incident_id}` first")
    window = ingested_window(root, incident_id)
    if window is not None:
        return window["from_block"], window["to_block"]
    try:
        inc = load_incident(incident_id, devchain_dir=devchain_dir)
    except (OSError, KeyError, ValueError):
        inc = None
    if inc is None:
        raise PostmortemError(f"the warehouse at {root} has no ingest of incident {incident_id}; run "
                              f"`postmortem ingest --incident {incident_id}` first")
    return inc.from_block, inc.to_block


def _read(warehouse_root, sql: str, params: list) -> list[tuple]:
    from postmortem.sql import connect_read_only

    con = connect_read_only(warehouse_root)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def last_header_at_or_before(warehouse_root, block: int, floor: int) -> int:
    """The last block at or before ``block`` whose header the warehouse holds (the state only changes
    at blocks with logs, which all have one); ``floor`` when none does."""
    got = _read(warehouse_root, "SELECT max(block_number) FROM blocks WHERE block_number BETWEEN ? AND ?",
                [floor, block])
    return int(got[0][0]) if got and got[0][0] is not None else floor


def liquidated_users(warehouse_root, a: int, b: int) -> set[tuple[str, str]]:
    """(pool, user) of every LiquidationCall logged in blocks ``a..b``."""
    rows = _read(warehouse_root, "SELECT DISTINCT pool, \"user\" FROM liquidations WHERE block_number BETWEEN ? AND ?",
                 [a, b])
    return {(str(p).lower(), str(u).lower()) for p, u in rows}
