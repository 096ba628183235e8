"""Deploy an Aave v3.0.x market from the compiled artifacts of npm ``@aave/core-v3`` 1.19.3.

The v3.0 line differs from v3.6 where a deploy notices: the Pool and the configurator are
initialized through the addresses provider's proxies; every reserve has its own
``DefaultReserveInterestRateStrategy`` (constructor parameters in ray) and a stable-debt token;
eMode categories carry a price source and membership is one category per asset
(``setAssetEModeCategory``). Its math (rounding, close factor) differs too, which is why a
scenario can put such a market next to a v3.6 one.

The shared tokens, feeds and the capped-ratio adapter come from ``devchain.deploy.deploy_world``.
Contract names are prefixed with ``V30`` (libraries too) so they never collide with the v3.6
compile in ``Chain.artifacts`` and ``Chain.libraries``.
"""

from __future__ import annotations

import json
from pathlib import Path

from postmortem.devchain.chain import Chain
from postmortem.devchain.market_parts import ROLES, ZERO, configure_reserves, deploy_capo_adapter
from postmortem.paths import NODE_MODULES, SETUP_COMMAND
from postmortem.errors import PostmortemError

PREFIX = "V30"
ARTIFACTS_DIR = NODE_MODULES / "@aave" / "core-v3" / "artifacts" / "contracts"
CONTRACTS = ("PoolAddressesProvider", "ACLManager", "Pool", "PoolConfigurator", "AaveOracle",
             "AaveProtocolDataProvider", "AToken", "StableDebtToken", "VariableDebtToken",
             "DefaultReserveInterestRateStrategy", "SupplyLogic", "BorrowLogic", "LiquidationLogic",
             "EModeLogic", "BridgeLogic", "PoolLogic", "FlashLoanLogic", "ConfiguratorLogic")
RAY_PER_BPS = 10**23


def name(contract: str) -> str:
    return PREFIX + contract


def load_artifacts(directory: Path = ARTIFACTS_DIR) -> dict[str, dict]:
    """The Hardhat artifacts (``abi``, ``bytecode``, ``linkReferences``) under prefixed names,
    library references renamed to match."""
    if not directory.exists():
        raise PostmortemError(f"npm package @aave/core-v3 is missing ({directory}); run `{SETUP_COMMAND}` first")
    found = {p.stem: p for p in directory.rglob("*.json") if not p.name.endswith(".dbg.json")}
    out = {}
    for contract in CONTRACTS:
        art = json.loads(found[contract].read_text())
        links = {src: {name(lib): refs for lib, refs in libs.items()} for src, libs in art["linkReferences"].items()}
        out[name(contract)] = {"abi": art["abi"], "bytecode": art["bytecode"].removeprefix("0x"), "linkReferences": links}
    return out


def deploy_market(chain: Chain, world: dict, book: dict, market: str, m: dict, deploy_capo: bool) -> dict:
    if name("Pool") not in chain.artifacts.contracts:
        chain.artifacts.contracts.update(load_artifacts())
    d, admin, risk = ROLES["deployer"], ROLES["pool_admin"], ROLES["risk_admin"]
    out: dict = {"name": market, "revision": "3.0"}
    provider = chain.deploy(name("PoolAddressesProvider"), f"devchain-{market}", d)
    chain.send(provider.functions.setACLAdmin(admin), d, label="setACLAdmin")
    acl = chain.deploy(name("ACLManager"), provider.address)
    chain.send(provider.functions.setACLManager(acl.address), d, label="setACLManager")
    chain.send(acl.functions.addPoolAdmin(admin), admin, label="addPoolAdmin")
    chain.send(acl.functions.addRiskAdmin(risk), admin, label="addRiskAdmin")
    chain.send(acl.functions.addPoolAdmin(d), admin, label="addPoolAdmin(deployer)")
    if deploy_capo:
        deploy_capo_adapter(chain, world, book, acl.address)

    # The provider deploys the proxies and calls initialize(provider) on them.
    pool_impl = chain.deploy(name("Pool"), provider.address)
    chain.send(provider.functions.setPoolImpl(pool_impl.address), d, label="setPoolImpl")
    pool_addr = provider.functions.getPool().call()
    conf_impl = chain.deploy(name("PoolConfigurator"))
    chain.send(provider.functions.setPoolConfiguratorImpl(conf_impl.address), d, label="setPoolConfiguratorImpl")
    conf_addr = provider.functions.getPoolConfigurator().call()

    assets = list(world["assets"])
    token_addrs = [book["tokens"][s]["address"] for s in assets]
    sources = [book["feeds"][world["assets"][s]["price_source"]] for s in assets]
    oracle = chain.deploy(name("AaveOracle"), provider.address, token_addrs, sources, ZERO, ZERO, 10**8)
    chain.send(provider.functions.setPriceOracle(oracle.address), d, label="setPriceOracle")
    data_provider = chain.deploy(name("AaveProtocolDataProvider"), provider.address)
    chain.send(provider.functions.setPoolDataProvider(data_provider.address), d, label="setPoolDataProvider")

    a_impl = chain.deploy(name("AToken"), pool_addr)
    s_impl = chain.deploy(name("StableDebtToken"), pool_addr)
    v_impl = chain.deploy(name("VariableDebtToken"), pool_addr)
    conf = chain.contract(name("PoolConfigurator"), conf_addr)
    inputs, strategies = [], {}
    tag = market.capitalize()
    for sym in assets:
        a = world["assets"][sym]
        optimal, base, slope1, slope2 = (x * RAY_PER_BPS for x in a["rate"])
        ir = chain.deploy(name("DefaultReserveInterestRateStrategy"), provider.address, optimal, base, slope1, slope2,
                          0, 0, 0, 0, 0)
        strategies[sym] = ir.address
        inputs.append((
            a_impl.address, s_impl.address, v_impl.address, a["decimals"], ir.address,
            book["tokens"][sym]["address"], ROLES["treasury"], ZERO,
            f"Aave devchain {market} {sym}", f"a{tag}{sym}",
            f"Aave devchain {market} Variable Debt {sym}", f"variableDebt{tag}{sym}",
            f"Aave devchain {market} Stable Debt {sym}", f"stableDebt{tag}{sym}", b"",
        ))
    chain.send(conf.functions.initReserves(inputs), admin, gas=60_000_000, label="initReserves")
    pool = chain.contract(name("Pool"), pool_addr)
    reserves = configure_reserves(chain, conf, pool, world, book, assets, sources, admin)
    for sym in assets:
        reserves[sym]["interest_rate_strategy"] = strategies[sym]
    e = m["emode"]
    # v3.0: one category per asset, for collateral and borrowing alike; no category price source.
    members = list(dict.fromkeys(e["collateral"] + e["borrowable"]))
    chain.send(conf.functions.setEModeCategory(e["id"], e["ltv"], e["lt"], e["bonus"], ZERO, e["label"]), admin,
               label="setEModeCategory")
    for sym in members:
        chain.send(conf.functions.setAssetEModeCategory(book["tokens"][sym]["address"], e["id"]), admin,
                   label=f"setAssetEModeCategory({sym})")
    out.update({
        "pool_addresses_provider": provider.address, "pool": pool_addr, "pool_configurator": conf_addr,
        "acl_manager": acl.address, "oracle": oracle.address, "data_provider": data_provider.address,
        "reserves": reserves, "emode": e,
    })
    return out


def set_emode_category(chain: Chain, market: dict, ltv: int, sender: str, label: str) -> None:
    """Change the market's eMode category LTV (scenario set-up), with the v3.0 signature."""
    e = market["emode"]
    conf = chain.contract(name("PoolConfigurator"), market["pool_configurator"])
    chain.send(conf.functions.setEModeCategory(e["id"], ltv, e["lt"], e["bonus"], ZERO, e["label"]), sender,
               label=label)
