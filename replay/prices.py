"""Price models: what the protocol reported, and what was true, for every asset at any checkpoint.

*Reported* is ``AaveOracle.getAssetPrice`` as the protocol saw it at the checkpoint, recomputed
exactly from the price source's state:

- a capped-ratio (CAPO) adapter: ``base * min(ratio, snapshotRatio + growth * (t - snapshotTs)) / 1e18``
  with ``t`` the checkpoint's block timestamp (the cap moves every second with no event);
- a plain feed: its latest answer.

The state at a checkpoint inside block ``b`` is the state read at the end of the previous listed
block (``capo_states``, ``feed_answers``), plus the events logged earlier in block ``b``
(``CapParametersUpdated`` of the adapter, ``AnswerUpdated`` of the feed). The live ratio has no
event; inside a block it is the value read at the end of the previous block.

*True* is one model per asset symbol (:class:`TrueModel`), declared in the incident file under
``[true_price.<SYMBOL>]`` and overridable with ``--true-price SYMBOL=MODEL[:PARAM]``:

``reported``  the reported price (the default for every asset without a declaration);
``uncapped``  a capped-ratio source without its cap: ``base * liveRatio / 1e18``;
``constant``  a fixed price, in USD (``constant:2345.67``; exact, at most 8 decimals);
``feed``      another on-chain feed's answers (``feed:0xADDRESS``), from the warehouse's
              ``feed_answers`` and ``oracle_answers`` of that address;
``csv``       a time series (``csv:PATH``): a CSV with ``timestamp`` (or ``block_number``) and
              ``price`` (USD) columns; the last row at or before the checkpoint applies.

Prices are integers in the oracle's base currency unit (1e8 = 1 USD on Aave v3 markets).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from postmortem.errors import PostmortemError

__all__ = [
    "BASE_CURRENCY_UNIT",
    "CapOverrides",
    "CappedRatioState",
    "PriceComponents",
    "PriceBook",
    "PriceSource",
    "TrueModel",
    "capped_ratio_price",
    "counterfactual_price",
    "shift_price",
    "parse_true_price_option",
    "true_models_from_incident",
    "uncapped_price",
]

BASE_CURRENCY_UNIT = 10**8  # AaveOracle BASE_CURRENCY_UNIT on USD-based markets
RATIO_UNIT = 10**18  # the capped adapters' RATIO_DECIMALS = 18
# Sources valued from their own ``latestAnswer`` (events and block-end ``feed_answers`` reads);
# a source of kind "other" is valued from the oracle's block-end ``getAssetPrice`` reads.
FEED_LIKE = ("feed", "stable_cap")
MODELS = ("reported", "uncapped", "constant", "feed", "csv")


# --- the formulas ---------------------------------------------------------------------------------


@dataclass
class CappedRatioState:
    """A capped-ratio adapter's state (all 18-decimal ratios, unix seconds).

    ``growth_scale`` divides ``growth * elapsed`` for adapters that keep the per-second growth
    scaled up for precision (1 for the published adapters and the devchain's).
    """

    snapshot_ratio: int = 0
    snapshot_timestamp: int = 0
    max_ratio_growth_per_second: int = 0
    ratio: int = 0
    growth_scale: int = 1

    def max_ratio(self, timestamp: int) -> int:
        """``snapshotRatio + maxRatioGrowthPerSecond * (block.timestamp - snapshotTimestamp)``."""
        return self.snapshot_ratio + self.max_ratio_growth_per_second * (timestamp - self.snapshot_timestamp) // self.growth_scale

    def is_capped(self, timestamp: int) -> bool:
        return self.ratio > self.max_ratio(timestamp)


def capped_ratio_price(state: CappedRatioState, base_answer: int, timestamp: int) -> int:
    """``latestAnswer`` of a capped-ratio adapter at ``timestamp`` (0 when an input is not positive).

    ``base * min(ratio, maxRatio) / 1e18``; Solidity's signed division truncates toward zero,
    the same as flooring here since both factors are positive.
    """
    if base_answer <= 0 or state.ratio <= 0:
        return 0
    ratio = min(state.ratio, state.max_ratio(timestamp))
    return base_answer * ratio // RATIO_UNIT


def uncapped_price(state: CappedRatioState, base_answer: int) -> int:
    """The capped adapter's price without the cap: ``base * liveRatio / 1e18``."""
    if base_answer <= 0 or state.ratio <= 0:
        return 0
    return base_answer * state.ratio // RATIO_UNIT


def usd_to_base(text: str, what: str) -> int:
    """``"2345.67"`` USD -> 234567000000 base units, exactly (at most 8 decimals)."""
    try:
        value = Decimal(str(text).strip()) * BASE_CURRENCY_UNIT
    except InvalidOperation:
        raise PostmortemError(f"{what}: {text!r} is not a number; give a USD price such as 2345.67") from None
    if value != value.to_integral_value() or value < 0:
        raise PostmortemError(f"{what}: {text!r} must be a non-negative USD price with at most 8 decimals")
    return int(value)


# --- true-price models ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrueModel:
    """How the true price of one asset symbol is obtained."""

    model: str = "reported"
    price: int | None = None  # constant, base units
    feed: str | None = None  # feed address, lowercase
    series: tuple[tuple[str, int, int], ...] = ()  # csv: (key kind, key, price base units), sorted
    source: str = "default"  # where the declaration came from (incident file, command line)

    def describe(self) -> str:
        if self.model == "constant":
            return f"constant:{Decimal(self.price) / BASE_CURRENCY_UNIT}"
        if self.model == "feed":
            return f"feed:{self.feed}"
        if self.model == "csv":
            return f"csv ({len(self.series)} points)"
        return self.model


def _model(symbol: str, model: str, param: str | None, source: str, base_dir: Path | None) -> TrueModel:
    what = f"true price of {symbol}"
    if model not in MODELS:
        raise PostmortemError(f"{what}: unknown model {model!r}; use one of {', '.join(MODELS)}")
    if model in ("reported", "uncapped"):
        if param:
            raise PostmortemError(f"{what}: model {model} takes no parameter (got {param!r})")
        return TrueModel(model, source=source)
    if not param:
        raise PostmortemError(f"{what}: model {model} needs a parameter, e.g. {symbol}={model}:{_EXAMPLE[model]}")
    if model == "constant":
        return TrueModel(model, price=usd_to_base(param, what), source=source)
    if model == "feed":
        addr = param.strip().lower()
        if not (addr.startswith("0x") and len(addr) == 42 and all(c in "0123456789abcdef" for c in addr[2:])):
            raise PostmortemError(f"{what}: {param!r} is not a feed address (0x followed by 40 hex digits)")
        return TrueModel(model, feed=addr, source=source)
    path = Path(param).expanduser()
    if not path.is_absolute() and base_dir is not None and not path.exists():
        path = base_dir / path
    return TrueModel(model, series=_read_series(path, what), source=source)


_EXAMPLE = {"constant": "2345.67", "feed": "0x5424384b256154046e9667ddfaaa5e550145215e", "csv": "prices.csv"}


def _read_series(path: Path, what: str) -> tuple[tuple[str, int, int], ...]:
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            key = "timestamp" if "timestamp" in fields else "block_number" if "block_number" in fields else None
            if key is None or "price" not in fields:
                raise PostmortemError(
                    f"{what}: {path} needs a header with `timestamp` (or `block_number`) and `price` (USD) columns"
                )
            rows = []
            for n, row in enumerate(reader, start=2):
                try:
                    k = int(row[key])
                except (TypeError, ValueError):
                    raise PostmortemError(f"{what}: line {n} of {path} has {key} {row[key]!r}, not an integer") from None
                rows.append((key, k, usd_to_base(row["price"], f"{what} (line {n} of {path})")))
    except FileNotFoundError:
        raise PostmortemError(f"{what}: the CSV file {path} does not exist; give a path to an existing file") from None
    if not rows:
        raise PostmortemError(f"{what}: {path} has no rows")
    return tuple(sorted(rows, key=lambda r: r[1]))


def parse_true_price_option(text: str, base_dir: Path | None = None) -> tuple[str, TrueModel]:
    """``"wstETH=constant:2345.67"`` -> ``("wstETH", TrueModel(...))`` (the ``--true-price`` syntax)."""
    symbol, sep, spec = text.partition("=")
    symbol, spec = symbol.strip(), spec.strip()
    if not sep or not symbol or not spec:
        raise PostmortemError(
            f"--true-price {text!r} is not SYMBOL=MODEL[:PARAM]; e.g. --true-price wstETH=uncapped "
            "or --true-price wstETH=constant:2345.67"
        )
    model, _, param = spec.partition(":")
    return symbol, _model(symbol, model.strip().lower(), param.strip() or None, "command line", base_dir)


def true_models_from_incident(declared: Mapping[str, Mapping] | None, base_dir: Path | None = None) -> dict[str, TrueModel]:
    """The ``[true_price.<SYMBOL>]`` tables of an incident file -> models.

    Each table has ``model`` and, depending on it, ``price`` (USD), ``feed`` (address) or
    ``path`` (CSV, relative to the incident file).
    """
    out = {}
    for symbol, spec in (declared or {}).items():
        if isinstance(spec, str):
            model, _, param = spec.partition(":")
        else:
            model = str(spec.get("model", "reported"))
            param = spec.get("price") or spec.get("feed") or spec.get("path") or spec.get("param")
        out[symbol] = _model(symbol, model.strip().lower(), str(param).strip() if param else None,
                             "incident file", base_dir)
    return out


# --- the book of price sources --------------------------------------------------------------------


@dataclass(frozen=True)
class PriceSource:
    """How one reserve of one market is priced (a ``reserves`` row)."""

    pool: str
    asset: str
    symbol: str
    source: str
    kind: str  # "capped_ratio" | "feed" | "stable_cap" (valued from its own answers) | "other": oracle_prices
    base_feed: str | None = None


@dataclass
class PriceBook:
    """The state of every price source, moved forward event by event.

    ``feeds`` holds the latest answer of every plain feed and base feed (and of feeds a true
    model refers to); ``capo`` the capped-ratio adapters' state; ``oracle`` the last
    ``getAssetPrice`` read per (pool, asset), used for sources of another kind.
    """

    sources: dict[tuple[str, str], PriceSource]
    true_models: dict[str, TrueModel] = field(default_factory=dict)
    feeds: dict[str, int] = field(default_factory=dict)
    capo: dict[str, CappedRatioState] = field(default_factory=dict)
    oracle: dict[tuple[str, str], int] = field(default_factory=dict)
    growth_scale: int = 1

    def __post_init__(self) -> None:
        for src in self.sources.values():
            if src.kind == "capped_ratio":
                self.capo.setdefault(src.source, CappedRatioState(growth_scale=self.growth_scale))
        for symbol, model in self.true_models.items():
            if model.model == "uncapped" and not any(
                s.symbol == symbol and s.kind == "capped_ratio" for s in self.sources.values()
            ):
                raise PostmortemError(
                    f"true price of {symbol}: model uncapped needs a capped-ratio price source, and {symbol} "
                    "has none in these markets; choose constant, feed or csv"
                )
        known = {s.symbol for s in self.sources.values()}
        for symbol in self.true_models:
            if symbol not in known:
                raise PostmortemError(
                    f"true price declared for {symbol}, which is not a reserve of the replayed markets "
                    f"(reserves: {', '.join(sorted(known))})"
                )

    def tracked_feeds(self) -> set[str]:
        """Addresses whose ``AnswerUpdated`` events move a price (plain feeds, base feeds, true feeds)."""
        out = set()
        for s in self.sources.values():
            if s.kind in FEED_LIKE:
                out.add(s.source)
            if s.base_feed:
                out.add(s.base_feed)
        out |= {m.feed for m in self.true_models.values() if m.model == "feed" and m.feed}
        return out

    # ---- state changes

    def set_capo_snapshot(self, adapter: str, snapshot_ratio: int, snapshot_timestamp: int,
                          growth_per_second: int, ratio: int, base_answer: int | None,
                          base_feed: str | None) -> None:
        """The adapter's state read at the end of a block (a ``capo_states`` row)."""
        st = self.capo.setdefault(adapter, CappedRatioState(growth_scale=self.growth_scale))
        st.snapshot_ratio, st.snapshot_timestamp = snapshot_ratio, snapshot_timestamp
        st.max_ratio_growth_per_second, st.ratio = growth_per_second, ratio
        if base_answer is not None and base_feed:
            self.feeds[base_feed] = base_answer

    def apply_cap_parameters(self, adapter: str, snapshot_ratio: int, snapshot_timestamp: int,
                             growth_per_second: int) -> bool:
        """A ``CapParametersUpdated`` event of ``adapter``."""
        st = self.capo.get(adapter)
        if st is None:
            return False
        st.snapshot_ratio, st.snapshot_timestamp, st.max_ratio_growth_per_second = (
            snapshot_ratio, snapshot_timestamp, growth_per_second)
        return True

    def apply_answer(self, feed: str, answer: int) -> None:
        """An ``AnswerUpdated`` event, or a ``feed_answers`` read, of ``feed``."""
        self.feeds[feed] = answer

    def set_oracle_price(self, pool: str, asset: str, price: int) -> None:
        self.oracle[(pool, asset)] = price

    # ---- prices

    def reported(self, pool: str, asset: str, timestamp: int) -> int:
        """``AaveOracle.getAssetPrice(asset)`` of ``pool``'s oracle at ``timestamp`` (the state as it is now)."""
        src = self.sources[(pool, asset)]
        if src.kind == "capped_ratio":
            st = self.capo[src.source]
            return capped_ratio_price(st, self.feeds.get(src.base_feed or "", 0), timestamp)
        if src.kind in FEED_LIKE:
            answer = self.feeds.get(src.source)
            if answer is not None:
                return max(answer, 0)
        return self.oracle.get((pool, asset), 0)

    def true(self, pool: str, asset: str, timestamp: int, block_number: int, reported: int | None = None) -> int:
        """The true price of ``asset`` under its symbol's model."""
        src = self.sources[(pool, asset)]
        model = self.true_models.get(src.symbol)
        if model is None or model.model == "reported":
            return self.reported(pool, asset, timestamp) if reported is None else reported
        if model.model == "uncapped":
            return uncapped_price(self.capo[src.source], self.feeds.get(src.base_feed or "", 0))
        if model.model == "constant":
            return int(model.price or 0)
        if model.model == "feed":
            answer = self.feeds.get(model.feed or "")
            if answer is None:
                raise PostmortemError(
                    f"true price of {src.symbol}: the feed {model.feed} has no answer in the warehouse at block "
                    f"{block_number}; ingest that feed or choose another model"
                )
            return answer
        key = timestamp if model.series[0][0] == "timestamp" else block_number
        price = None
        for _kind, k, p in model.series:
            if k > key:
                break
            price = p
        if price is None:
            raise PostmortemError(
                f"true price of {src.symbol}: the CSV series starts after {model.series[0][0]} {key}; "
                "add a row at or before the start of the window"
            )
        return price

    def prices(self, pool: str, timestamp: int, block_number: int) -> tuple[dict[str, int], dict[str, int]]:
        """``(reported, true)`` prices of every asset of ``pool``, keyed by asset address."""
        reported, true = {}, {}
        for (p, asset) in self.sources:
            if p != pool:
                continue
            r = self.reported(pool, asset, timestamp)
            reported[asset] = r
            true[asset] = self.true(pool, asset, timestamp, block_number, r)
        return reported, true


def price_sources(rows: Iterable[Mapping]) -> dict[tuple[str, str], PriceSource]:
    """``reserves`` rows -> :class:`PriceSource` by (pool, asset)."""
    out = {}
    for r in rows:
        out[(r["pool"], r["asset"])] = PriceSource(
            pool=r["pool"], asset=r["asset"], symbol=r["symbol"], source=(r.get("price_source") or "").lower(),
            kind=r.get("source_kind") or "feed", base_feed=(r.get("base_feed") or None) and r["base_feed"].lower(),
        )
    return out


# --- counterfactual reported prices (what-if and stress) ------------------------------------------

SECONDS_PER_YEAR = 365 * 24 * 3600  # the capped adapters' SECONDS_PER_YEAR
PERCENTAGE_FACTOR = 10_000  # the capped adapters' PERCENTAGE_FACTOR (basis points)


_APPLIED: dict = {}  # CapOverrides.apply results (the states are never mutated once taken)


@dataclass(frozen=True)
class CapOverrides:
    """Parameters of a capped-ratio adapter set to other values (``None``: as they were).

    ``max_yearly_growth_bps`` is the adapter's ``maxYearlyRatioGrowthPercent`` (basis points,
    885 = 8.85% a year). Setting the snapshot ratio or the yearly growth recomputes the growth
    per second as ``setCapParameters`` does: ``snapshotRatio * yearly / 10000 / SECONDS_PER_YEAR``.
    """

    snapshot_ratio: int | None = None
    snapshot_timestamp: int | None = None
    max_yearly_growth_bps: int | None = None

    def any(self) -> bool:
        return any(v is not None for v in (self.snapshot_ratio, self.snapshot_timestamp, self.max_yearly_growth_bps))

    def apply(self, state: CappedRatioState) -> CappedRatioState:
        """``state`` with these parameters, the growth per second recomputed when it depends on them."""
        if not self.any():
            return state
        key = (self, state.snapshot_ratio, state.snapshot_timestamp, state.max_ratio_growth_per_second, state.ratio,
               state.growth_scale)
        got = _APPLIED.get(key)
        if got is None:
            if len(_APPLIED) > 100_000:
                _APPLIED.clear()
            got = _APPLIED[key] = self._apply(state)
        return got

    def _apply(self, state: CappedRatioState) -> CappedRatioState:
        ratio = state.snapshot_ratio if self.snapshot_ratio is None else self.snapshot_ratio
        ts = state.snapshot_timestamp if self.snapshot_timestamp is None else self.snapshot_timestamp
        growth = state.max_ratio_growth_per_second
        if self.snapshot_ratio is not None or self.max_yearly_growth_bps is not None:
            yearly = (_yearly_growth_bps(state.snapshot_ratio, state.max_ratio_growth_per_second, state.growth_scale)
                      if self.max_yearly_growth_bps is None else self.max_yearly_growth_bps)
            growth = ratio * yearly // PERCENTAGE_FACTOR // SECONDS_PER_YEAR * state.growth_scale
        return CappedRatioState(snapshot_ratio=ratio, snapshot_timestamp=ts, max_ratio_growth_per_second=growth,
                                ratio=state.ratio, growth_scale=state.growth_scale)


@lru_cache(maxsize=4096)
def _yearly_growth_bps(snapshot_ratio: int, growth_per_second: int, growth_scale: int) -> int:
    return yearly_growth_bps(CappedRatioState(snapshot_ratio, 0, growth_per_second, 0, growth_scale))


def yearly_growth_bps(state: CappedRatioState) -> int:
    """The ``maxYearlyRatioGrowthPercent`` (bps) that gives ``state``'s growth per second: the
    smallest integer ``y`` with ``snapshotRatio * y / 10000 / SECONDS_PER_YEAR == growth`` (exact
    when the state was set by ``setCapParameters``; else the nearest)."""
    if state.snapshot_ratio <= 0:
        return 0
    growth = state.max_ratio_growth_per_second // max(state.growth_scale, 1)
    guess = growth * SECONDS_PER_YEAR * PERCENTAGE_FACTOR // state.snapshot_ratio
    for y in range(max(guess - 2, 0), guess + 3):
        if state.snapshot_ratio * y // PERCENTAGE_FACTOR // SECONDS_PER_YEAR == growth:
            return y
    return guess


@dataclass(frozen=True)
class PriceComponents:
    """What one reserve's reported price is computed from at one moment: a capped-ratio adapter's
    state and base answer, or a plain price (a feed's answer or the oracle's read)."""

    kind: str  # "capped_ratio" or "plain"
    price: int = 0
    capo: CappedRatioState | None = None
    base_answer: int = 0

    @classmethod
    def of(cls, book: "PriceBook", pool: str, asset: str, timestamp: int) -> "PriceComponents":
        src = book.sources[(pool, asset)]
        if src.kind == "capped_ratio":
            st = book.capo[src.source]
            copy = CappedRatioState(st.snapshot_ratio, st.snapshot_timestamp, st.max_ratio_growth_per_second,
                                    st.ratio, st.growth_scale)
            return cls("capped_ratio", capo=copy, base_answer=book.feeds.get(src.base_feed or "", 0))
        return cls("plain", price=book.reported(pool, asset, timestamp))


def counterfactual_price(components: PriceComponents, timestamp: int, cap: CapOverrides | None = None) -> int:
    """The reported price from ``components`` at ``timestamp``, under ``cap`` overrides of a
    capped-ratio adapter (ignored for a plain price). Without overrides it equals
    :meth:`PriceBook.reported` at the moment the components were taken."""
    if components.kind != "capped_ratio" or components.capo is None:
        return components.price
    state = cap.apply(components.capo) if cap is not None else components.capo
    return capped_ratio_price(state, components.base_answer, timestamp)


def is_capped(components: PriceComponents, timestamp: int, cap: CapOverrides | None = None) -> bool:
    """``isCapped()`` of the adapter behind ``components`` at ``timestamp`` under ``cap``."""
    if components.kind != "capped_ratio" or components.capo is None:
        return False
    state = cap.apply(components.capo) if cap is not None else components.capo
    return state.is_capped(timestamp)


def shift_price(price: int, shift_bps: int) -> int:
    """``price`` moved by ``shift_bps`` basis points (-3000 = 30% lower), floored; never below 0."""
    return max(price * (PERCENTAGE_FACTOR + shift_bps) // PERCENTAGE_FACTOR, 0)
