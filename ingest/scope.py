"""What an ingest run will read: the checked block range and markets (``IngestPlan``, built by
``_plan`` from the incident or the command line, with the node asked only for its chain id, head
and finalized block), and the users whose start positions are read (``users_scope``): the
holders of the mispriced reserve plus every user of the window's logs, or everyone.
"""

from __future__ import annotations

from dataclasses import dataclass

from postmortem.errors import PostmortemError
from postmortem.incidents import Incident
from postmortem.ingest.rpc import RpcClient, RpcError
from postmortem.warehouse import Warehouse

ZERO = "0x" + "0" * 40


@dataclass
class IngestPlan:
    chain_id: int
    pools: dict[str, str]
    from_block: int
    to_block: int
    users_since: int
    price_grid: int
    incident_id: str | None
    revisions: dict[str, str]
    users: str = "all"  # the users whose start positions are read: "incident" or "all" (USER_SCOPES)
    mispriced: dict[str, str | None] | None = None  # symbol -> asset address (if the incident names it)
    finality: str = ""  # how the range's end was checked against the node's finality, in words


USER_SCOPES = ("incident", "all")


def users_scope(incident: Incident | None, users: str | None) -> tuple[str, dict[str, str | None]]:
    """The scope of the start snapshot and the mispriced assets it is built around.

    ``incident``: the holders of the incident's mispriced (``[true_price]``) assets at the start
    plus every user in the window's logs; ``all``: every user who ever held a market token
    since ``users_since``. Default: ``incident`` when the incident names a mispriced asset,
    else ``all``."""
    mispriced: dict[str, str | None] = {}
    if incident is not None:
        assets = {str(k): str(v).lower() for k, v in (incident.raw.get("assets") or {}).items()}
        mispriced = {sym: assets.get(sym) for sym in (incident.true_price or {})}
    if users is None:
        users = "incident" if mispriced else "all"
    if users not in USER_SCOPES:
        raise PostmortemError(f"--users {users!r} is not a scope; give --users incident or --users all")
    if users == "incident" and not mispriced:
        raise PostmortemError(
            "--users incident needs an incident whose [true_price] names the mispriced asset; give --incident ID, "
            "or --users all to read every user of the markets"
        )
    return users, mispriced


def _plan(client: RpcClient, *, incident: Incident | None, pools: list[str] | None, from_block, to_block,
          users_since, price_grid, allow_unfinalized: bool, users: str | None = None) -> IngestPlan:
    # Everything that can be checked without the node is checked first.
    scope, mispriced = users_scope(incident, users)
    if incident is not None:
        pool_map = dict(incident.pools)
        from_block = incident.from_block if from_block is None else from_block
        to_block = incident.to_block if to_block is None else to_block
        users_since = incident.users_since if users_since is None else users_since
        price_grid = incident.price_grid if price_grid is None else price_grid
        if incident.finality == "latest":
            allow_unfinalized = True
    else:
        if not pools:
            raise PostmortemError("say what to ingest: --incident ID or at least one --pool ADDRESS")
        pool_map = {}
        for p in pools:
            if not (isinstance(p, str) and p.startswith("0x") and len(p) == 42):
                raise PostmortemError(f"--pool {p!r} is not an address; give a 0x-prefixed 40-hex-digit Pool address")
            pool_map[f"pool-{p[2:8].lower()}"] = p.lower()
        price_grid = price_grid or 0
    if from_block is None or to_block is None:
        raise PostmortemError("give the block range with --from-block and --to-block")
    if from_block < 1 or to_block < 1:
        raise PostmortemError("block numbers start at 1; give --from-block and --to-block of 1 or more")
    if from_block > to_block:
        raise PostmortemError(f"--from-block {from_block} is after --to-block {to_block}; swap them")

    chain_id = int(client.call("eth_chainId", []), 16)
    if incident is not None and chain_id != incident.chain_id:
        raise PostmortemError(
            f"the RPC URL serves chain {chain_id} but incident {incident.id} is on chain {incident.chain_id}; "
            "point --rpc-url at a node of that chain"
        )
    head = int(client.call("eth_blockNumber", []), 16)
    if to_block > head:
        raise PostmortemError(f"--to-block {to_block} is past the node's latest block {head}; lower it")
    finality = "not checked: blocks past finality allowed"
    if not allow_unfinalized:
        finalized, finality = _finalized(client, head)
        if to_block > finalized:
            raise PostmortemError(
                f"--to-block {to_block} is past the node's finalized block {finalized}; lower it, or pass "
                "--allow-unfinalized to ingest blocks that a reorg may still replace"
            )
    return IngestPlan(chain_id, pool_map, int(from_block), int(to_block), int(users_since or 0),
                      int(price_grid or 0), incident.id if incident else None, {}, scope, mispriced, finality)


def _finalized(client: RpcClient, head: int) -> tuple[int, str]:
    """The node's finalized block, and how it was known. A node that does not know the tag (one
    from before the Merge, a minimal one) answers an error or ``null``: then its head stands in,
    and the words say so (they go to the progress line and the ``runs`` record)."""
    try:
        fin = client.call("eth_getBlockByNumber", ["finalized", False])
    except RpcError as exc:
        return head, f"the node does not know the finalized tag ({exc.message[:80]}); checked against its head {head}"
    if not fin:
        return head, f"the node reports no finalized block; checked against its head {head}"
    return int(fin["number"], 16), f"finalized block {int(fin['number'], 16)}"


def mispriced_reserves(markets, plan: IngestPlan) -> list[tuple]:
    """(market, reserve) of every mispriced asset (by address if the incident names it, else by
    symbol) in the markets."""
    out = []
    for m in markets:
        for r in m.reserves:
            for sym, addr in (plan.mispriced or {}).items():
                if (addr and r["asset"] == addr) or (not addr and r["symbol"] == sym):
                    out.append((m, r))
    if plan.users == "incident" and not out:
        names = ", ".join(sorted(plan.mispriced or {})) or "none"
        raise PostmortemError(
            f"the incident's mispriced asset ({names}) is not a reserve of the markets ingested; check the "
            "incident's [true_price] and [assets], or pass --users all"
        )
    return out


def scan_tokens(markets, plan: IngestPlan) -> list[str]:
    """Tokens whose Transfer logs the holder scan reads: the mispriced reserves' aToken and
    variable-debt token (``incident``), or every market token (``all``)."""
    if plan.users == "incident":
        pairs = mispriced_reserves(markets, plan)
        return sorted({t for _, r in pairs for t in (r["a_token"], r["variable_debt_token"])})
    return sorted({t for m in markets for r in m.reserves for t in (r["a_token"], r["variable_debt_token"])})


# Columns of the decoded window tables that name a user, and those that name the reserve touched.
_USER_COLUMNS = ("user", "on_behalf_of", "to_address", "from_address", "repayer", "liquidator", "caller", "target")
_ASSET_COLUMNS = ("reserve", "collateral_asset", "debt_asset", "asset")
_WINDOW_TABLES = ("supplies", "withdraws", "borrows", "repays", "liquidations", "collateral_toggles", "emode_changes",
                  "deficits", "token_mints", "token_burns", "balance_transfers", "transfers")


def window_users(wh: Warehouse, chain: int, a: int, b: int) -> dict[tuple[str, str], set[str]]:
    """Every user in the window's Pool and token logs: (emitting contract, user) -> the reserves
    (assets) those logs touch for them (a user with only an eMode change has an empty set)."""
    import duckdb

    out: dict[tuple[str, str], set[str]] = {}
    con = duckdb.connect()
    for ds in _WINDOW_TABLES:
        files = [str(wh.root / r.path) for r in wh.completed_chunks(chain, ds) if r.start >= a and r.end <= b]
        if not files:
            continue
        cols = {row[0] for row in con.execute("select name from parquet_schema(?)", [files[0]]).fetchall()}
        users = [c for c in _USER_COLUMNS if c in cols]
        assets = [c for c in _ASSET_COLUMNS if c in cols] or ["NULL"]
        parts = [f"select address as c, {u} as u, {x} as x from read_parquet(?)" for u in users for x in assets]
        if not parts:
            continue
        q = " union all ".join(parts)
        for contract, user, asset in con.execute(
                f"select distinct c, u, x from ({q}) where u is not null and u <> ?", [files] * len(parts) + [ZERO]
        ).fetchall():
            got = out.setdefault((contract, user), set())
            if asset:
                got.add(asset)
    return out


def _incident_users(wh, chain, markets, plan: IngestPlan, holders: dict[str, set[str]], a: int, b: int):
    """pool -> user -> extra assets to read for the incident scope: the holders of the mispriced
    reserve's tokens (that reserve), and every user of the window in the market whose Pool or
    tokens logged them (the reserves they touched)."""
    wanted: dict[str, dict[str, set[str]]] = {m.pool: {} for m in markets}
    pool_of = {}
    for m in markets:
        pool_of[m.pool] = m.pool
        for r in m.reserves:
            pool_of[r["a_token"]] = pool_of[r["variable_debt_token"]] = m.pool
    for m, r in mispriced_reserves(markets, plan):
        for token in (r["a_token"], r["variable_debt_token"]):
            for u in holders.get(token, ()):
                wanted[m.pool].setdefault(u, set()).add(r["asset"])
    for (contract, u), assets in window_users(wh, chain, a, b).items():
        pool = pool_of.get(contract)
        if pool is not None:
            wanted[pool].setdefault(u, set()).update(assets)
    return wanted
