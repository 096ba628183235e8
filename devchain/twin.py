"""The mainnet twin's contracts: Aave v3.6 Core and Prime, their tokens and price sources, placed
at their mainnet addresses on an anvil started with chain id 1.

How a contract gets to a mainnet address: it is deployed normally at a temporary address, with
constructor arguments that already name the *target* addresses of its dependencies (so its
immutables are right); the deploying transaction is traced with the ``prestateTracer`` in diff
mode, which lists every storage slot it wrote; the runtime code and those slots are copied to
the target (``anvil_setCode``, ``anvil_setStorageAt``) and the temporary copy's code is removed.
Proxies a factory creates (the Pool and PoolConfigurator proxies, created by the addresses
provider) are moved the same way from the creating transaction's trace, and the provider is
re-pointed with ``setAddress``. Every move happens before anything writes a mapping keyed by
the temporary address. Order: feeds, tokens and adapters; provider; ACL; pool implementation;
pool proxy; configurator; oracle and data provider; token implementations; ``initReserves``.

The aToken and debt-token proxies stay where ``initReserves`` creates them (the pool's reserve
data names them); the manifest lists both those and mainnet's.
"""

from __future__ import annotations

from eth_abi import encode
from eth_utils import to_checksum_address

from postmortem.devchain.chain import Chain, address_for
from postmortem.devchain.market_parts import ROLES, ZERO, configure_emode, configure_reserves, units
from postmortem.errors import PostmortemError

TRACE = {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}


def _id(name: str) -> bytes:
    """A PoolAddressesProvider id: the ASCII name right-padded to bytes32 (``'POOL'``)."""
    return name.encode().ljust(32, b"\0")


class Placer:
    """Deploys contracts and moves them to their mainnet addresses."""

    def __init__(self, chain: Chain):
        self.chain = chain

    def _last_tx(self) -> str:
        block = self.chain.rpc("eth_getBlockByNumber", ["latest", False])
        return block["transactions"][-1]

    def move(self, tx_hash: str, temp: str, target: str) -> None:
        """Copy the code and every storage slot ``tx_hash`` wrote at ``temp`` to ``target``."""
        tx_hash = Chain._hex(tx_hash)
        post = {k.lower(): v for k, v in self.chain.rpc("debug_traceTransaction", [tx_hash, TRACE])["post"].items()}
        state = post.get(temp.lower())
        if not state or "code" not in state:
            raise PostmortemError(f"the trace of {tx_hash} shows no contract created at {temp}")
        target = to_checksum_address(target)
        self.chain.rpc("anvil_setCode", [target, state["code"]])
        for slot, value in state.get("storage", {}).items():
            self.chain.rpc("anvil_setStorageAt", [target, slot, value])
        self.chain.rpc("anvil_setCode", [to_checksum_address(temp), "0x"])

    def move_proxy(self, provider, tx_hash: str, id_name: str, created: str, target: str) -> None:
        """A proxy the provider created at ``created``: moved to ``target`` (unless it is there
        already) and the provider re-pointed."""
        if created.lower() == target.lower():
            return
        self.move(tx_hash, created, target)
        self.chain.send(provider.functions.setAddress(_id(id_name), to_checksum_address(target)), ROLES["deployer"],
                        label=f"setAddress({id_name})")

    def deploy_at(self, target: str, name: str, *args):
        """Deploy ``name(*args)`` and move it to ``target``; returns the contract at ``target``."""
        temp = self.chain.deploy(name, *args)
        self.move(self._last_tx(), temp.address, target)
        return self.chain.contract(name, target)


def deploy_shared(placer: Placer, sc: dict, genesis_ts: int) -> dict:
    """Tokens, feeds, stETH and the price sources of every reserve of both markets, each at its
    mainnet address; returns ``{"tokens", "feeds", "sources", "ratio_providers"}``."""
    c = placer.chain
    prices, addrs = sc["prices"], sc["addresses"]
    pw = int(prices["weth_usd"])
    out: dict = {"tokens": {}, "feeds": {}, "sources": {}, "ratio_providers": {}}
    books = addrs["markets"]
    weth_source = books["core"]["assets"]["WETH"]["price_source"]
    eth_usd = placer.deploy_at(weth_source, "SettableAggregator", 8, "ETH / USD", pw)
    out["feeds"]["eth_usd"] = eth_usd.address
    steth = placer.deploy_at(addrs["steth"], "StEthLike", int(prices["ratios"]["wstETH"]))
    out["steth"] = steth.address
    # Tokens: one per symbol, shared by both markets as on mainnet.
    for market in ("core", "prime"):
        for sym, a in books[market]["assets"].items():
            if sym in out["tokens"]:
                continue
            if sym == "wstETH":
                placer.deploy_at(a["underlying"], "WstEthLike", steth.address)
            else:
                placer.deploy_at(a["underlying"], "TestERC20", sym, sym, a["decimals"])
            out["tokens"][sym] = {"address": to_checksum_address(a["underlying"]), "decimals": a["decimals"]}
    acl_core = books["core"]["acl_manager"]
    capo = sc["capo"]
    for market in ("core", "prime"):
        kinds = {r[0]: r[1] for r in sc["markets"][market]["reserves"]}
        for sym, a in books[market]["assets"].items():
            src = to_checksum_address(a["price_source"])
            if src in out["sources"].values():
                out["sources"][f"{market}:{sym}"] = src
                continue
            kind = kinds[sym]
            if kind == "feed" and src != eth_usd.address:
                placer.deploy_at(src, "SettableAggregator", 8, f"{sym} / USD", units(prices["other_usd"][sym], 8))
            elif kind == "capo" and sym == "wstETH":
                placer.deploy_at(src, "CappedRatioAdapter", acl_core, eth_usd.address, steth.address,
                                 "Capped wstETH / stETH(ETH) / USD", capo["minimum_snapshot_delay"],
                                 units(capo["stale_snapshot_ratio"], 18), capo["stale_snapshot_timestamp"],
                                 capo["max_yearly_growth_bps"])
            elif kind == "capo":
                # Another LST: the same adapter over its own settable ratio provider; the cap sits
                # above the ratio (a snapshot at the ratio, growing 10% a year).
                ratio = int(prices["ratios"][sym])
                provider = c.deploy("StEthLike", ratio)
                out["ratio_providers"][sym] = provider.address
                placer.deploy_at(src, "CappedRatioAdapter", acl_core, eth_usd.address, provider.address,
                                 f"Capped {sym} / ETH / USD", 604800, ratio, genesis_ts - 8 * 86400, 1000)
            elif kind == "stable_cap":
                feed = c.deploy("SettableAggregator", 8, f"{sym} / USD", units(prices["other_usd"][sym], 8))
                out["feeds"][f"{sym.lower()}_usd"] = feed.address
                placer.deploy_at(src, "StableCapAdapter", feed.address, units(prices["stable_cap"], 8),
                                 f"Capped {sym} / USD")
            elif kind == "fixed":
                placer.deploy_at(src, "FixedPriceSource", units(prices["other_usd"][sym], 8), f"{sym} / USD fixed")
            out["sources"][f"{market}:{sym}"] = src
            if kind == "feed":
                out["feeds"][f"{sym.lower()}_usd" if sym != "WETH" else "eth_usd"] = src
    out["feeds"]["wsteth_capo"] = out["sources"]["core:wstETH"]
    placer.deploy_at(addrs["multicall3"], "Multicall3Like")
    return out


def deploy_market(placer: Placer, sc: dict, shared: dict, market: str) -> dict:
    """One Aave v3.6 market at its mainnet addresses, configured as the scenario says."""
    c = placer.chain
    d, admin, risk = ROLES["deployer"], ROLES["pool_admin"], ROLES["risk_admin"]
    mb = sc["addresses"]["markets"][market]
    provider = placer.deploy_at(mb["pool_addresses_provider"], "PoolAddressesProvider", f"Aave {market.capitalize()} twin", d)
    # A contract's nonce starts at 1: with it, the provider CREATEs the Pool and configurator
    # proxies where mainnet's provider did (its nonces 1 and 2), so those need no move.
    c.rpc("anvil_setNonce", [provider.address, hex(1)])
    c.send(provider.functions.setACLAdmin(admin), d, label="setACLAdmin")
    acl = placer.deploy_at(mb["acl_manager"], "ACLManager", provider.address)
    c.send(provider.functions.setACLManager(acl.address), d, label="setACLManager")
    for fn, who in ((acl.functions.addPoolAdmin(admin), "addPoolAdmin"), (acl.functions.addRiskAdmin(risk), "addRiskAdmin"),
                    (acl.functions.addPoolAdmin(d), "addPoolAdmin(deployer)")):
        c.send(fn, admin, label=who)

    ir = c.deploy("DefaultReserveInterestRateStrategyV2", provider.address)
    pool_impl = c.deploy("PoolInstance", provider.address, ir.address)
    tx = c.send(provider.functions.setPoolImpl(pool_impl.address), d, label="setPoolImpl")
    placer.move_proxy(provider, tx, "POOL", provider.functions.getPool().call(), mb["pool"])
    conf_impl = c.deploy("PoolConfiguratorInstance")
    tx = c.send(provider.functions.setPoolConfiguratorImpl(conf_impl.address), d, label="setPoolConfiguratorImpl")
    placer.move_proxy(provider, tx, "POOL_CONFIGURATOR", provider.functions.getPoolConfigurator().call(),
                      mb["pool_configurator"])
    pool_addr, conf_addr = provider.functions.getPool().call(), provider.functions.getPoolConfigurator().call()
    if (pool_addr.lower(), conf_addr.lower()) != (mb["pool"].lower(), mb["pool_configurator"].lower()):
        raise PostmortemError(f"the {market} provider does not name the pool and configurator at their mainnet addresses")

    specs = {r[0]: r for r in sc["markets"][market]["reserves"]}
    assets = list(specs)
    tokens = [shared["tokens"][s]["address"] for s in assets]
    sources = [shared["sources"][f"{market}:{s}"] for s in assets]
    oracle = placer.deploy_at(mb["oracle"], "AaveOracle", provider.address, tokens, sources, ZERO, ZERO, 10**8)
    c.send(provider.functions.setPriceOracle(oracle.address), d, label="setPriceOracle")
    dp = placer.deploy_at(mb["data_provider"], "AaveProtocolDataProvider", provider.address)
    c.send(provider.functions.setPoolDataProvider(dp.address), d, label="setPoolDataProvider")

    a_impl = c.deploy("ATokenInstance", pool_addr, ZERO, to_checksum_address(mb["collector"]))
    v_impl = c.deploy("VariableDebtTokenInstance", pool_addr, ZERO)
    conf = c.contract("PoolConfiguratorInstance", conf_addr)
    prefix = "Ethereum" if market == "core" else "EthereumLido"
    inputs = [(a_impl.address, v_impl.address, shared["tokens"][s]["address"],
               f"Aave {prefix} {s}", f"aEth{'Lido' if market == 'prime' else ''}{s}",
               f"Aave {prefix} Variable Debt {s}", f"variableDebtEth{'Lido' if market == 'prime' else ''}{s}",
               b"", encode(["uint16", "uint32", "uint32", "uint32"], specs[s][6])) for s in assets]
    c.send(conf.functions.initReserves(inputs), admin, gas=200_000_000, label="initReserves")
    pool = c.contract("PoolInstance", pool_addr)
    world = {"liquidation_protocol_fee": sc["liquidation_protocol_fee"],
             "assets": {s: {"ltv": r[2], "lt": r[3], "bonus": r[4], "reserve_factor": r[5],
                            "decimals": shared["tokens"][s]["decimals"]} for s, r in specs.items()}}
    reserves = configure_reserves(c, conf, pool, world, {"tokens": shared["tokens"]}, assets, sources, admin)
    for s, r in reserves.items():
        r["mainnet_a_token"] = mb["assets"][s]["a_token"]
        r["mainnet_variable_debt_token"] = mb["assets"][s]["variable_debt_token"]
        r["kind"] = specs[s][1]
    for e in sc["markets"][market]["emodes"]:
        configure_emode(c, conf, e, shared["tokens"], admin)
    return {
        "name": market, "revision": "3.6", "pool_addresses_provider": provider.address, "pool": pool_addr,
        "pool_configurator": conf_addr, "acl_manager": acl.address, "oracle": oracle.address,
        "data_provider": dp.address, "interest_rate_strategy": ir.address, "collector": mb["collector"],
        "reserves": reserves, "emode": sc["markets"][market]["emodes"][0], "emodes": sc["markets"][market]["emodes"],
        "frozen": list(sc["markets"][market].get("frozen", [])),
    }


def deploy_twin(chain: Chain, sc: dict, genesis_ts: int) -> dict:
    """Everything at its mainnet address; returns the address book (the manifest's ``addresses``)."""
    chain.deployer = ROLES["deployer"]
    for addr in ROLES.values():
        chain.fund(addr, 10_000)
    placer = Placer(chain)
    shared = deploy_shared(placer, sc, genesis_ts)
    book = {"roles": dict(ROLES), "tokens": shared["tokens"], "feeds": shared["feeds"], "steth": shared["steth"],
            "price_sources": shared["sources"], "ratio_providers": shared["ratio_providers"],
            "multicall3": to_checksum_address(sc["addresses"]["multicall3"]), "markets": {}}
    for market in ("core", "prime"):
        book["markets"][market] = deploy_market(placer, sc, shared, market)
    book["libraries"] = dict(chain.libraries)
    return book


# -- a longer history (benchmarks) ----------------------------------------------------------------
# ``history_blocks=N`` puts N blocks of churn of a token no market lists *before* the deployment:
# the genesis moves N blocks (and N seconds, blocks being one second apart) earlier, and the
# chain from the deployment on is block for block the one ``N = 0`` gives (same numbers, same
# timestamps, same deployer nonces, so the same addresses and the same 49 logs). The blocks are
# empty but for one block of a few transfers every ``HISTORY_SPACING`` blocks.
HISTORY_SPACING = 5_000
HISTORY_TRANSFERS_PER_BLOCK = 3
MAX_HISTORY_BLOCKS = 20_000_000


MINE_STEP = 500  # blocks per anvil_mine call: each call stays far inside the client's 120 s timeout


def mine_empty(chain: Chain, count: int) -> None:
    """``count`` empty blocks, in calls of at most ``MINE_STEP`` (on anvil 1.7 a block costs time
    that grows with the chain, about 30 ms past 10,000 blocks, so one call of thousands can
    outlast the client's timeout)."""
    while count > 0:
        step = min(count, MINE_STEP)
        chain.rpc("anvil_mine", [hex(step)])
        count -= step


def twin_scenario(sc: dict, *, history_blocks: int = 0, **unknown) -> dict:
    """The twin scenario with its parameters applied: ``history_blocks`` (default 0: the twin as
    it is) blocks of unrelated token churn before the deployment."""
    if unknown:
        raise PostmortemError(
            f"the mainnet twin takes no parameter {', '.join(sorted(unknown))}; its only parameter is history_blocks=N"
        )
    if isinstance(history_blocks, bool) or not isinstance(history_blocks, int) or not (
            0 <= history_blocks <= MAX_HISTORY_BLOCKS):
        raise PostmortemError(
            f"history_blocks must be a whole number of blocks from 0 to {MAX_HISTORY_BLOCKS:,}, not {history_blocks!r}"
        )
    if history_blocks == 0:
        return sc
    out = dict(sc)
    args = list(sc["anvil_args"])
    i = args.index("--number") + 1
    args[i] = str(int(args[i]) - history_blocks)
    out["anvil_args"] = args
    out["genesis_timestamp"] = int(sc["genesis_timestamp"]) - history_blocks
    out["history_blocks"] = history_blocks
    return out


def mine_history(chain: Chain, n: int, *, spacing: int = HISTORY_SPACING) -> dict:
    """Mine ``n`` blocks one second apart from the genesis: a churn token (deployed and minted by
    its own account, so no market deployer's nonce moves), then every ``HISTORY_SPACING``
    blocks (``spacing``) one block of ``HISTORY_TRANSFERS_PER_BLOCK`` transfers, the rest empty
    (``anvil_mine`` with a count). Returns what it made."""
    start = chain.block_number
    end = start + n
    transfers = 0
    token = None
    if n >= spacing:
        churner = address_for("twin-history-churner")
        chain.fund(churner, 100)
        token = chain.deploy("TestERC20", "Churn", "CHURN", 18, sender=churner)
        chain.send(token.functions.mint(churner, 10**30), churner, label="churn mint")
        k = 0
        while chain.block_number + spacing <= end:
            mine_empty(chain, spacing - 1)
            chain.begin_batch()
            for j in range(HISTORY_TRANSFERS_PER_BLOCK):
                chain.send(token.functions.transfer(address_for(f"twin-history-{k}-{j}"), 10**18 + k * 1_000 + j),
                           churner, label="churn transfer")
                transfers += 1
            for r in chain.mine_batch():
                if r.status != 1:
                    raise PostmortemError(f"a churn transfer of the twin's history reverted in block {r.blockNumber}")
            k += 1
    left = end - chain.block_number
    mine_empty(chain, left)
    if chain.block_number != end:
        raise PostmortemError(f"the twin's history ended at block {chain.block_number}, not {end}")
    return {"history_blocks": n, "history_token": token.address if token else None, "history_transfers": transfers}
