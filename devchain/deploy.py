"""Deploy the devchain world: shared tokens and price feeds, a capped-ratio wstETH adapter,
and Aave v3.6 markets ("core", "prime") built from the npm sources, in the order the
protocol requires (see shared/reference/devchain.md).

A market with ``"revision": "3.0"`` is deployed from the ``@aave/core-v3`` artifacts instead
(``devchain.deploy_v30``). Configuration is data: ``DEFAULT_WORLD`` below can be overridden by
a scenario's ``world``.
"""

from __future__ import annotations

import copy

from eth_abi import encode

from postmortem.devchain.chain import Chain
from postmortem.devchain.deploy_v30 import deploy_market as deploy_market_v30
from postmortem.devchain.market_parts import ROLES, ZERO, configure_emode, configure_reserves, deploy_capo_adapter, units  # noqa: F401 (re-exported)

# Risk parameters close to Ethereum Core/Prime in March 2026 (bps; bonus is 100% + bonus).
DEFAULT_WORLD: dict = {
    "assets": {
        "WETH": {"name": "Wrapped Ether (devchain)", "decimals": 18, "ltv": 8050, "lt": 8300, "bonus": 10500,
                 "reserve_factor": 1500, "rate": [9000, 0, 270, 8000], "price_source": "eth_usd"},
        "wstETH": {"name": "wstETH", "decimals": 18, "ltv": 7850, "lt": 8100, "bonus": 10600,
                   "reserve_factor": 500, "rate": [8000, 0, 200, 8500], "price_source": "wsteth_capo"},
        "cbETH": {"name": "Coinbase Wrapped Staked ETH (devchain)", "decimals": 18, "ltv": 7450, "lt": 7700,
                  "bonus": 10750, "reserve_factor": 1500, "rate": [4500, 0, 700, 30000], "price_source": "cbeth_usd"},
        "USDC": {"name": "USD Coin (devchain)", "decimals": 6, "ltv": 7500, "lt": 7800, "bonus": 10450,
                 "reserve_factor": 1000, "rate": [9200, 0, 650, 6000], "price_source": "usdc_usd"},
    },
    "feeds": {
        # Chainlink-style feeds, 8 decimals, USD.
        "eth_usd": {"description": "ETH / USD", "answer": "2000"},
        "cbeth_usd": {"description": "cbETH / USD", "answer": "2240"},
        "usdc_usd": {"description": "USDC / USD", "answer": "1"},
    },
    "steth_rate": "1.228848994",
    "capo": {
        # The stale snapshot the adapter carried into the incident (Feb 2024).
        "snapshot_ratio": "1.1572", "snapshot_timestamp": 1707400000,
        "max_yearly_growth_bps": 885, "minimum_snapshot_delay": 604800,
    },
    "liquidation_protocol_fee": 1000,
    "markets": {
        "core": {"emode": {"id": 1, "ltv": 9300, "lt": 9500, "bonus": 10100, "label": "ETH correlated",
                           "collateral": ["WETH", "wstETH", "cbETH"], "borrowable": ["WETH", "wstETH", "cbETH"]}},
        "prime": {"emode": {"id": 1, "ltv": 9500, "lt": 9650, "bonus": 10100, "label": "ETH correlated",
                            "collateral": ["WETH", "wstETH", "cbETH"], "borrowable": ["WETH", "wstETH", "cbETH"]}},
    },
}

def merge_world(override: dict | None) -> dict:
    world = copy.deepcopy(DEFAULT_WORLD)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(world.get(key), dict):
            for k, v in value.items():
                if isinstance(v, dict) and isinstance(world[key].get(k), dict):
                    world[key][k].update(v)
                else:
                    world[key][k] = v
        else:
            world[key] = value
    return world


def deploy_world(chain: Chain, world: dict) -> dict:
    """Deploy everything; returns the address book (the manifest's ``addresses`` part)."""
    chain.deployer = ROLES["deployer"]
    for addr in ROLES.values():
        chain.fund(addr, 10_000)
    book: dict = {"roles": dict(ROLES), "tokens": {}, "feeds": {}, "markets": {}, "libraries": {}}

    # Shared tokens and feeds: one set for both markets, as on mainnet.
    steth = chain.deploy("StEthLike", units(world["steth_rate"], 18))
    book["steth"] = steth.address
    for sym, a in world["assets"].items():
        if sym == "wstETH":
            tok = chain.deploy("WstEthLike", steth.address)
        else:
            tok = chain.deploy("TestERC20", a["name"], sym, a["decimals"])
        book["tokens"][sym] = {"address": tok.address, "decimals": a["decimals"]}
    for key, f in world["feeds"].items():
        feed = chain.deploy("SettableAggregator", 8, f["description"], units(f["answer"], 8))
        book["feeds"][key] = feed.address

    first = True
    for market, m in world["markets"].items():
        if m is None:  # a scenario may drop a default market
            continue
        # a "3.0" market is deployed from the @aave/core-v3 artifacts
        deploy_market = deploy_market_v30 if m.get("revision", "3.6") == "3.0" else _deploy_market
        book["markets"][market] = deploy_market(chain, world, book, market, m, deploy_capo=first)
        first = False
    book["libraries"] = dict(chain.libraries)
    return book


def _deploy_market(chain: Chain, world: dict, book: dict, name: str, m: dict, deploy_capo: bool) -> dict:
    d, admin, risk = ROLES["deployer"], ROLES["pool_admin"], ROLES["risk_admin"]
    out: dict = {"name": name, "revision": "3.6"}
    provider = chain.deploy("PoolAddressesProvider", f"devchain-{name}", d)
    chain.send(provider.functions.setACLAdmin(admin), d, label="setACLAdmin")
    acl = chain.deploy("ACLManager", provider.address)
    chain.send(provider.functions.setACLManager(acl.address), d, label="setACLManager")
    chain.send(acl.functions.addPoolAdmin(admin), admin, label="addPoolAdmin")
    chain.send(acl.functions.addRiskAdmin(risk), admin, label="addRiskAdmin")
    chain.send(acl.functions.addPoolAdmin(d), admin, label="addPoolAdmin(deployer)")

    if deploy_capo:
        deploy_capo_adapter(chain, world, book, acl.address)

    ir = chain.deploy("DefaultReserveInterestRateStrategyV2", provider.address)
    pool_impl = chain.deploy("PoolInstance", provider.address, ir.address)
    chain.send(provider.functions.setPoolImpl(pool_impl.address), d, label="setPoolImpl")
    pool_addr = provider.functions.getPool().call()
    conf_impl = chain.deploy("PoolConfiguratorInstance")
    chain.send(provider.functions.setPoolConfiguratorImpl(conf_impl.address), d, label="setPoolConfiguratorImpl")
    conf_addr = provider.functions.getPoolConfigurator().call()

    assets = list(world["assets"])
    token_addrs = [book["tokens"][s]["address"] for s in assets]
    sources = [book["feeds"][world["assets"][s]["price_source"]] for s in assets]
    oracle = chain.deploy("AaveOracle", provider.address, token_addrs, sources, ZERO, ZERO, 10**8)
    chain.send(provider.functions.setPriceOracle(oracle.address), d, label="setPriceOracle")
    data_provider = chain.deploy("AaveProtocolDataProvider", provider.address)
    chain.send(provider.functions.setPoolDataProvider(data_provider.address), d, label="setPoolDataProvider")

    a_impl = chain.deploy("ATokenInstance", pool_addr, ZERO, ROLES["treasury"])
    v_impl = chain.deploy("VariableDebtTokenInstance", pool_addr, ZERO)
    conf = chain.contract("PoolConfiguratorInstance", conf_addr)
    inputs = []
    for sym in assets:
        a = world["assets"][sym]
        inputs.append((
            a_impl.address, v_impl.address, book["tokens"][sym]["address"],
            f"Aave devchain {name} {sym}", f"a{name.capitalize()}{sym}",
            f"Aave devchain {name} Variable Debt {sym}", f"variableDebt{name.capitalize()}{sym}",
            b"", encode(["uint16", "uint32", "uint32", "uint32"], a["rate"]),
        ))
    chain.send(conf.functions.initReserves(inputs), admin, gas=60_000_000, label="initReserves")
    pool = chain.contract("PoolInstance", pool_addr)
    reserves = configure_reserves(chain, conf, pool, world, book, assets, sources, admin)
    e = m["emode"]
    configure_emode(chain, conf, e, book["tokens"], admin)
    out.update({
        "pool_addresses_provider": provider.address, "pool": pool_addr, "pool_configurator": conf_addr,
        "acl_manager": acl.address, "oracle": oracle.address, "data_provider": data_provider.address,
        "interest_rate_strategy": ir.address, "reserves": reserves, "emode": e,
    })
    return out
