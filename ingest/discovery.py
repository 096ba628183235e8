"""Market discovery from the chain itself: for each Pool, its addresses provider, oracle,
configurator and data provider, every reserve with its aToken and variable-debt token, each
asset's price source, and for a capped-ratio source what stands behind it (base feed, ratio
provider). Chainlink proxies are followed to the aggregator that actually emits the logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from postmortem.ingest.calls import Read, run_reads
from postmortem.errors import PostmortemError

ZERO = "0x" + "0" * 40
# Pool.POOL_REVISION() -> the math revision replay mirrors (aave-v3-origin / @aave/core-v3).
POOL_REVISIONS = {1: "3.0", 2: "3.0", 3: "3.0", 4: "3.1", 5: "3.2", 6: "3.3", 7: "3.4", 8: "3.5", 9: "3.5", 10: "3.6"}


def revision_key(revision: str) -> tuple[int, ...]:
    """``"3.10"`` -> ``(3, 10)``: revisions compare as numbers ("3.10" comes after "3.2")."""
    try:
        return tuple(int(part) for part in str(revision).split("."))
    except ValueError:
        raise PostmortemError(f"{revision!r} is not an Aave revision like 3.6; give it as MAJOR.MINOR") from None


def aave_revision_of(pool: str, pool_revision: int) -> str:
    """The Aave release a ``Pool.POOL_REVISION()`` belongs to; an unknown one is refused, never guessed."""
    try:
        return POOL_REVISIONS[pool_revision]
    except KeyError:
        known = ", ".join(f"{k} ({v})" for k, v in sorted(POOL_REVISIONS.items()))
        raise PostmortemError(
            f"the Pool {pool} reports POOL_REVISION {pool_revision}, a revision postmortem does not know "
            f"(known: {known}); its math would only be guessed, so it is not ingested: add the revision "
            "to postmortem first"
        ) from None


@dataclass
class Market:
    name: str
    pool: str
    addresses_provider: str = ""
    oracle: str = ""
    pool_configurator: str = ""
    data_provider: str = ""
    pool_revision: int = 0
    aave_revision: str = ""
    reserves: list[dict] = field(default_factory=list)


def _lower(addr) -> str:
    return str(addr).lower()


def discover(client, pools: dict[str, str], block: int, revisions: dict[str, str] | None = None) -> list[Market]:
    """Discover every market (name -> pool address) as of ``block``."""
    markets = []
    for name, pool in pools.items():
        pool = _lower(pool)
        head = run_reads(client, [
            Read(pool, "ADDRESSES_PROVIDER()", out=("address",), block=block),
            Read(pool, "getReservesList()", out=("address[]",), block=block),
            Read(pool, "POOL_REVISION()", block=block),
        ])
        provider, reserves, revision = head
        if provider is None or reserves is None:
            raise PostmortemError(
                f"{pool} does not answer as an Aave v3 Pool at block {block}; check the --pool address "
                "and the chain the RPC URL points at"
            )
        m = Market(name=name, pool=pool, addresses_provider=_lower(provider), pool_revision=int(revision or 0))
        m.aave_revision = (revisions or {}).get(name) or aave_revision_of(pool, m.pool_revision)
        oracle, configurator, data_provider = run_reads(client, [
            Read(m.addresses_provider, "getPriceOracle()", out=("address",), block=block),
            Read(m.addresses_provider, "getPoolConfigurator()", out=("address",), block=block),
            Read(m.addresses_provider, "getPoolDataProvider()", out=("address",), block=block),
        ])
        m.oracle, m.pool_configurator = _lower(oracle), _lower(configurator)
        m.data_provider = _lower(data_provider or ZERO)
        assets = [_lower(a) for a in reserves]
        reads = []
        for a in assets:
            reads += [
                Read(pool, "getReserveData(address)", (a,), out=RESERVE_DATA_TYPES, block=block),
                Read(m.oracle, "getSourceOfAsset(address)", (a,), out=("address",), block=block),
                Read(a, "symbol()", out=("string",), block=block),
                Read(a, "decimals()", out=("uint8",), block=block),
            ]
        res = run_reads(client, reads)
        for i, a in enumerate(assets):
            rd, source, symbol, decimals = res[4 * i : 4 * i + 4]
            if rd is None:
                raise PostmortemError(f"getReserveData({a}) failed on {pool} at block {block}")
            m.reserves.append({
                "asset": a, "symbol": symbol if isinstance(symbol, str) else a[:10], "decimals": int(decimals or 18),
                "reserve_id": int(rd[7]), "a_token": _lower(rd[8]), "variable_debt_token": _lower(rd[10]),
                "price_source": _lower(source or ZERO),
            })
        _probe_sources(client, m, block)
        markets.append(m)
    return markets


# ReserveDataLegacy (v3.0-v3.6 getReserveData): configuration, liquidityIndex,
# currentLiquidityRate, variableBorrowIndex, currentVariableBorrowRate, currentStableBorrowRate,
# lastUpdateTimestamp, id, aTokenAddress, stableDebtTokenAddress, variableDebtTokenAddress,
# interestRateStrategyAddress, accruedToTreasury, unbacked, isolationModeTotalDebt
RESERVE_DATA_TYPES = ("uint256", "uint128", "uint128", "uint128", "uint128", "uint128", "uint40", "uint16",
                      "address", "address", "address", "address", "uint128", "uint128", "uint128")


def _probe_sources(client, m: Market, block: int) -> None:
    """Classify each price source by what it answers (``source_kind``):

    ``capped_ratio``  a capped-ratio (CAPO) adapter: ``RATIO_PROVIDER()`` and ``BASE_TO_USD_AGGREGATOR()``;
    ``feed``          a Chainlink-style feed: a proxy (``aggregator()``) or an aggregator (``latestRound()``);
    ``stable_cap``    a stablecoin price cap adapter: ``ASSET_TO_USD_AGGREGATOR()``;
    ``other``         anything else (a fixed price, an adapter of unknown shape). The replay cannot
                      follow it between reads, so it values it from the oracle's ``getAssetPrice`` read
                      at each block end, and the report says so.
    """
    sources = sorted({r["price_source"] for r in m.reserves})
    probes = ("RATIO_PROVIDER()", "BASE_TO_USD_AGGREGATOR()", "aggregator()", "ASSET_TO_USD_AGGREGATOR()")
    reads = []
    for s in sources:
        reads += [Read(s, sig, out=("address",), block=block) for sig in probes]
        reads.append(Read(s, "latestRound()", block=block))
    res = run_reads(client, reads)
    width = len(probes) + 1
    info = {}
    for i, s in enumerate(sources):
        ratio_provider, base, aggregator, asset_feed, latest_round = res[width * i : width * i + width]
        if ratio_provider and base:
            info[s] = {"source_kind": "capped_ratio", "ratio_provider": _lower(ratio_provider),
                       "base_feed": _lower(base), "feed_aggregator": None}
        elif aggregator or latest_round is not None:
            info[s] = {"source_kind": "feed", "ratio_provider": None, "base_feed": None,
                       "feed_aggregator": _lower(aggregator) if aggregator else None}
        elif asset_feed:
            # Valued from its own block-end answers: its asset feed's events would skip the cap.
            info[s] = {"source_kind": "stable_cap", "ratio_provider": None, "base_feed": None, "feed_aggregator": None}
        else:
            info[s] = {"source_kind": "other", "ratio_provider": None, "base_feed": None, "feed_aggregator": None}
    # A base feed behind a capped adapter may itself be a proxy: follow it to its aggregator.
    bases = sorted({v["base_feed"] for v in info.values() if v["base_feed"]})
    aggs = run_reads(client, [Read(b, "aggregator()", out=("address",), block=block) for b in bases])
    base_aggs = {b: (_lower(a) if a else None) for b, a in zip(bases, aggs)}
    for r in m.reserves:
        r.update(info[r["price_source"]])
        r["base_feed_aggregator"] = base_aggs.get(r["base_feed"]) if r["base_feed"] else None


def log_addresses(markets: list[Market]) -> list[str]:
    """Every contract whose logs a replay needs."""
    out: set[str] = set()
    for m in markets:
        out |= {m.pool, m.oracle, m.pool_configurator}
        for r in m.reserves:
            out |= {r["a_token"], r["variable_debt_token"], r["price_source"]}
            for key in ("base_feed", "feed_aggregator", "base_feed_aggregator"):
                if r.get(key):
                    out.add(r[key])
    out.discard(ZERO)
    return sorted(out)


def markets_table(markets: list[Market], block: int) -> pa.Table:
    s = pa.string()
    return pa.table({
        "market": pa.array([m.name for m in markets], s),
        "pool": pa.array([m.pool for m in markets], s),
        "addresses_provider": pa.array([m.addresses_provider for m in markets], s),
        "oracle": pa.array([m.oracle for m in markets], s),
        "pool_configurator": pa.array([m.pool_configurator for m in markets], s),
        "data_provider": pa.array([m.data_provider for m in markets], s),
        "pool_revision": pa.array([m.pool_revision for m in markets], pa.int64()),
        "aave_revision": pa.array([m.aave_revision for m in markets], s),
        "block_number": pa.array([block] * len(markets), pa.int64()),
    })


def reserves_table(markets: list[Market]) -> pa.Table:
    rows = [{"market": m.name, "pool": m.pool, **r} for m in markets for r in m.reserves]
    cols = ["market", "pool", "asset", "symbol", "decimals", "reserve_id", "a_token", "variable_debt_token",
            "price_source", "source_kind", "base_feed", "ratio_provider", "feed_aggregator", "base_feed_aggregator"]
    types = {"decimals": pa.int32(), "reserve_id": pa.int32()}
    return pa.table({c: pa.array([r.get(c) for r in rows], types.get(c, pa.string())) for c in cols})
