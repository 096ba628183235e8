"""Historical state read with ``eth_call`` at a block: reserve states and eMode categories at
the start of a range, every position at the start, and oracle / adapter / feed state at the
blocks that matter. Amounts are exact ``decimal128(38,0)`` values.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

from postmortem.ingest.calls import Read, run_reads
from postmortem.ingest.discovery import RESERVE_DATA_TYPES, Market, revision_key

DEC = pa.decimal128(38, 0)
EMODE_PROBE = 32  # categories 1..32 are probed; mainnet uses single digits


def _s(values) -> pa.Array:
    return pa.array(values, pa.string())


def _bits(values) -> pa.Array:
    """Bitmaps (reserve / user configuration, eMode bitmaps) can use all 256 bits: kept as
    exact decimal text."""
    return pa.array([None if v is None else str(int(v)) for v in values], pa.string())


def _dec(values) -> pa.Array:
    return pa.array([None if v is None else Decimal(int(v)) for v in values], DEC)


def reserve_states(client, markets: list[Market], block: int, timestamp: int) -> pa.Table:
    reads, keys = [], []
    for m in markets:
        for r in m.reserves:
            reads.append(Read(m.pool, "getReserveData(address)", (r["asset"],), out=RESERVE_DATA_TYPES, block=block))
            keys.append((m, r))
    res = run_reads(client, reads)
    rows = {k: [] for k in ("market", "pool", "asset", "configuration", "liquidity_index", "liquidity_rate",
                            "variable_borrow_index", "variable_borrow_rate", "last_update_timestamp",
                            "accrued_to_treasury")}
    for (m, r), rd in zip(keys, res):
        rd = rd or (0,) * 15
        rows["market"].append(m.name)
        rows["pool"].append(m.pool)
        rows["asset"].append(r["asset"])
        rows["configuration"].append(rd[0])
        rows["liquidity_index"].append(rd[1])
        rows["liquidity_rate"].append(rd[2])
        rows["variable_borrow_index"].append(rd[3])
        rows["variable_borrow_rate"].append(rd[4])
        rows["last_update_timestamp"].append(rd[6])
        rows["accrued_to_treasury"].append(rd[12])
    n = len(keys)
    return pa.table({
        "market": _s(rows["market"]), "pool": _s(rows["pool"]), "asset": _s(rows["asset"]),
        "block_number": pa.array([block] * n, pa.int64()), "timestamp": pa.array([timestamp] * n, pa.int64()),
        "configuration": _bits(rows["configuration"]),
        "liquidity_index": _dec(rows["liquidity_index"]), "liquidity_rate": _dec(rows["liquidity_rate"]),
        "variable_borrow_index": _dec(rows["variable_borrow_index"]),
        "variable_borrow_rate": _dec(rows["variable_borrow_rate"]),
        "last_update_timestamp": pa.array(rows["last_update_timestamp"], pa.int64()),
        "accrued_to_treasury": _dec(rows["accrued_to_treasury"]),
    })


def emode_categories(client, markets: list[Market], block: int) -> pa.Table:
    """eMode categories at ``block``: v3.6 split getters, else v3.0-v3.4 ``getEModeCategoryData``."""
    out = {k: [] for k in ("market", "pool", "category_id", "ltv", "liquidation_threshold", "liquidation_bonus",
                           "collateral_bitmap", "borrowable_bitmap", "label", "price_source")}
    for m in markets:
        ids = list(range(1, EMODE_PROBE + 1))
        if revision_key(m.aave_revision) >= (3, 2):
            reads = []
            for i in ids:
                reads += [Read(m.pool, "getEModeCategoryCollateralConfig(uint8)", (i,), out=("uint16", "uint16", "uint16"), block=block),
                          Read(m.pool, "getEModeCategoryCollateralBitmap(uint8)", (i,), out=("uint128",), block=block),
                          Read(m.pool, "getEModeCategoryBorrowableBitmap(uint8)", (i,), out=("uint128",), block=block),
                          Read(m.pool, "getEModeCategoryLabel(uint8)", (i,), out=("string",), block=block)]
            res = run_reads(client, reads)
            for k, i in enumerate(ids):
                cfg, coll, borr, label = res[4 * k : 4 * k + 4]
                if not cfg or cfg[1] == 0:
                    continue
                vals = (i, cfg[0], cfg[1], cfg[2], coll or 0, borr or 0, label or "", None)
                for key, v in zip(list(out)[2:], vals):
                    out[key].append(v)
                out["market"].append(m.name)
                out["pool"].append(m.pool)
        else:
            res = run_reads(client, [Read(m.pool, "getEModeCategoryData(uint8)", (i,),
                                          out=("(uint16,uint16,uint16,address,string)",), block=block) for i in ids])
            # v3.0: membership is the reserve's own eMode category (in its configuration bitmap).
            for i, data in zip(ids, res):
                if not data or data[1] == 0:
                    continue
                vals = (i, data[0], data[1], data[2], None, None, data[4], str(data[3]).lower())
                for key, v in zip(list(out)[2:], vals):
                    out[key].append(v)
                out["market"].append(m.name)
                out["pool"].append(m.pool)
    n = len(out["market"])
    return pa.table({
        "market": _s(out["market"]), "pool": _s(out["pool"]), "block_number": pa.array([block] * n, pa.int64()),
        "category_id": pa.array(out["category_id"], pa.int32()),
        "ltv": pa.array(out["ltv"], pa.int32()), "liquidation_threshold": pa.array(out["liquidation_threshold"], pa.int32()),
        "liquidation_bonus": pa.array(out["liquidation_bonus"], pa.int32()),
        "collateral_bitmap": _bits(out["collateral_bitmap"]), "borrowable_bitmap": _bits(out["borrowable_bitmap"]),
        "label": pa.array(out["label"], pa.string()), "price_source": pa.array(out["price_source"], pa.string()),
    })


def positions(client, markets: list[Market], holders: dict[str, set[str]], block: int) -> pa.Table:
    """Every position at ``block`` (``--users all``). ``holders`` maps a token (aToken or debt
    token) to the users who ever held it; only those (user, token) pairs are read, plus every
    reserve a user's configuration flags."""
    token_owner = {}
    for m in markets:
        for r in m.reserves:
            token_owner[r["a_token"]] = (m, r, "a")
            token_owner[r["variable_debt_token"]] = (m, r, "v")
    users_by_pool: dict[str, set[str]] = {}
    for token, users in holders.items():
        if token in token_owner:
            users_by_pool.setdefault(token_owner[token][0].pool, set()).update(users)
    config = _user_heads(client, markets, users_by_pool, block)
    bal_reads, bal_keys = [], []
    for token, users in sorted(holders.items()):
        if token not in token_owner:
            continue
        m, r, kind = token_owner[token]
        for u in sorted(users):
            bal_reads.append(Read(token, "scaledBalanceOf(address)", (u,), block=block))
            bal_keys.append((m, r, kind, u))
    bals = run_reads(client, bal_reads)
    acc: dict[tuple, dict] = {}
    for (m, r, kind, u), bal in zip(bal_keys, bals):
        key = (m.name, m.pool, u, r["asset"])
        row = acc.setdefault(key, {"a": 0, "v": 0, "reserve_id": r["reserve_id"]})
        row[kind] = int(bal or 0)
    # Flags may be set with zero balances (rare); include every flagged reserve too.
    for m in markets:
        by_id = {r["reserve_id"]: r for r in m.reserves}
        for u in users_by_pool.get(m.pool, ()):
            cfg = config.get((m.pool, u), (0, 0))[0]
            for rid, r in by_id.items():
                if (cfg >> (2 * rid)) & 3:
                    acc.setdefault((m.name, m.pool, u, r["asset"]), {"a": 0, "v": 0, "reserve_id": rid})
    return _positions_table(acc, config, block)


def scoped_positions(client, markets: list[Market], wanted: dict[str, dict[str, set[str]]], block: int) -> pa.Table:
    """The positions at ``block`` of the users in ``wanted`` (pool -> user -> assets to read
    beyond those the user's configuration flags), for ``--users incident``.

    Per (pool, user): ``getUserConfiguration`` and ``getUserEMode`` first; then the scaled
    aToken and debt balances of only the reserves the bitmap names (collateral or borrowing)
    and the extra assets given (e.g. the mispriced reserve, or reserves the user touched in the
    window). Same table and rows as ``positions`` for those reserves."""
    users_by_pool = {pool: set(users) for pool, users in wanted.items()}
    config = _user_heads(client, markets, users_by_pool, block)
    bal_reads, bal_keys = [], []
    for m in markets:
        by_id = {r["reserve_id"]: r for r in m.reserves}
        by_asset = {r["asset"]: r for r in m.reserves}
        for u in sorted(users_by_pool.get(m.pool, ())):
            cfg = config.get((m.pool, u), (0, 0))[0]
            kinds: dict[str, set[str]] = {}
            for rid, r in by_id.items():
                if (cfg >> (2 * rid)) & 1:
                    kinds.setdefault(r["asset"], set()).add("v")
                if (cfg >> (2 * rid + 1)) & 1:
                    kinds.setdefault(r["asset"], set()).add("a")
            for a in wanted[m.pool][u]:
                if a in by_asset:
                    kinds[a] = {"a", "v"}
            for a in sorted(kinds):
                r = by_asset[a]
                for token, kind in ((r["a_token"], "a"), (r["variable_debt_token"], "v")):
                    if kind in kinds[a]:
                        bal_reads.append(Read(token, "scaledBalanceOf(address)", (u,), block=block))
                        bal_keys.append((m, r, kind, u))
    bals = run_reads(client, bal_reads)
    acc: dict[tuple, dict] = {}
    for (m, r, kind, u), bal in zip(bal_keys, bals):
        row = acc.setdefault((m.name, m.pool, u, r["asset"]), {"a": 0, "v": 0, "reserve_id": r["reserve_id"]})
        row[kind] = int(bal or 0)
    return _positions_table(acc, config, block)


def _user_heads(client, markets: list[Market], users_by_pool: dict[str, set[str]], block: int) -> dict:
    """(pool, user) -> (configuration bitmap, eMode category) at ``block``."""
    head_reads, head_keys = [], []
    for m in markets:
        for u in sorted(users_by_pool.get(m.pool, ())):
            head_reads += [Read(m.pool, "getUserConfiguration(address)", (u,), block=block),
                           Read(m.pool, "getUserEMode(address)", (u,), block=block)]
            head_keys.append((m, u))
    head = run_reads(client, head_reads)
    return {(m.pool, u): (int(head[2 * i] or 0), int(head[2 * i + 1] or 0)) for i, (m, u) in enumerate(head_keys)}


def _positions_table(acc: dict[tuple, dict], config: dict, block: int) -> pa.Table:
    cols = {k: [] for k in ("market", "pool", "user", "emode_category", "user_configuration", "asset",
                            "scaled_a_token_balance", "scaled_variable_debt", "using_as_collateral", "borrowing")}
    for (market, pool, u, asset), row in sorted(acc.items()):
        cfg, emode = config.get((pool, u), (0, 0))
        rid = row["reserve_id"]
        borrowing = bool((cfg >> (2 * rid)) & 1)
        collateral = bool((cfg >> (2 * rid + 1)) & 1)
        if not (row["a"] or row["v"] or borrowing or collateral):
            continue
        for k, v in (("market", market), ("pool", pool), ("user", u), ("emode_category", emode),
                     ("user_configuration", cfg), ("asset", asset), ("scaled_a_token_balance", row["a"]),
                     ("scaled_variable_debt", row["v"]), ("using_as_collateral", collateral), ("borrowing", borrowing)):
            cols[k].append(v)
    n = len(cols["user"])
    return pa.table({
        "market": _s(cols["market"]), "pool": _s(cols["pool"]), "user": _s(cols["user"]),
        "block_number": pa.array([block] * n, pa.int64()),
        "emode_category": pa.array(cols["emode_category"], pa.int32()),
        "user_configuration": _bits(cols["user_configuration"]), "asset": _s(cols["asset"]),
        "scaled_a_token_balance": _dec(cols["scaled_a_token_balance"]),
        "scaled_variable_debt": _dec(cols["scaled_variable_debt"]),
        "using_as_collateral": pa.array(cols["using_as_collateral"], pa.bool_()),
        "borrowing": pa.array(cols["borrowing"], pa.bool_()),
    })


def price_reads(client, markets: list[Market], blocks: list[int]) -> dict[str, pa.Table]:
    """``oracle_prices``, ``capo_states`` and ``feed_answers`` at the end of each block."""
    price_reads_, price_keys = [], []
    adapters: dict[str, dict] = {}
    feeds: set[str] = set()
    for m in markets:
        for r in m.reserves:
            if r["source_kind"] == "capped_ratio":
                adapters[r["price_source"]] = r
                feeds.add(r["base_feed"])
            elif r["source_kind"] in ("feed", "stable_cap"):
                feeds.add(r["price_source"])  # a source of kind "other" is read through getAssetPrice only
    feeds.discard(None)
    for b in blocks:
        for m in markets:
            for r in m.reserves:
                price_reads_.append(Read(m.oracle, "getAssetPrice(address)", (r["asset"],), block=b))
                price_keys.append((b, m, r))
    capo_reads, capo_keys = [], []
    for b in blocks:
        for a in sorted(adapters):
            capo_reads += [Read(a, "getSnapshotRatio()", block=b), Read(a, "getSnapshotTimestamp()", block=b),
                           Read(a, "getMaxRatioGrowthPerSecond()", block=b), Read(a, "getRatio()", out=("int256",), block=b),
                           Read(adapters[a]["base_feed"], "latestAnswer()", out=("int256",), block=b)]
            capo_keys.append((b, a))
    feed_reads, feed_keys = [], []
    for b in blocks:
        for f in sorted(feeds):
            feed_reads.append(Read(f, "latestAnswer()", out=("int256",), block=b))
            feed_keys.append((b, f))
    res = run_reads(client, price_reads_ + capo_reads + feed_reads)
    p_res, c_res, f_res = res[: len(price_reads_)], res[len(price_reads_) : len(price_reads_) + len(capo_reads)], res[len(price_reads_) + len(capo_reads) :]
    oracle_prices = pa.table({
        "block_number": pa.array([k[0] for k in price_keys], pa.int64()),
        "market": _s([k[1].name for k in price_keys]), "pool": _s([k[1].pool for k in price_keys]),
        "oracle": _s([k[1].oracle for k in price_keys]), "asset": _s([k[2]["asset"] for k in price_keys]),
        "price": _dec(p_res),
    })
    c = [c_res[5 * i : 5 * i + 5] for i in range(len(capo_keys))]
    capo_states = pa.table({
        "block_number": pa.array([k[0] for k in capo_keys], pa.int64()),
        "adapter": _s([k[1] for k in capo_keys]),
        "base_feed": _s([adapters[k[1]]["base_feed"] for k in capo_keys]),
        "ratio_provider": _s([adapters[k[1]]["ratio_provider"] for k in capo_keys]),
        "snapshot_ratio": _dec([x[0] for x in c]), "snapshot_timestamp": pa.array([x[1] for x in c], pa.int64()),
        "max_ratio_growth_per_second": _dec([x[2] for x in c]), "ratio": _dec([x[3] for x in c]),
        "base_answer": _dec([x[4] for x in c]),
    })
    feed_answers = pa.table({
        "block_number": pa.array([k[0] for k in feed_keys], pa.int64()),
        "feed": _s([k[1] for k in feed_keys]), "answer": _dec(f_res),
    })
    return {"oracle_prices": oracle_prices, "capo_states": capo_states, "feed_answers": feed_answers}
