"""Deploy a Compound-v2-lineage market on the devchain: Venus isolated pools, from npm.

The protocol's contracts are the compiled artifacts shipped in npm ``@venusprotocol/isolated-pools``
(``VENUS_PACKAGE``): its ``Comptroller`` and ``VToken`` behind the transparent proxies the package
ships (both implementations disable their initializers), its ``WhitePaperInterestRateModel``,
and the ``AccessControlManager`` of ``@venusprotocol/governance-contracts`` that the package
ships compiled. Nothing is compiled from them. The project's own small contracts stand in for
the rest: ``SteerableVenusOracle`` (the price oracle, set by the scenario), ``ReserveSink`` (the
protocol share reserve), ``TestERC20`` (the underlyings) and ``Multicall3Like``.

What differs from a Venus deployment: the deployer account plays the PoolRegistry (the
Comptroller lets only its pool registry list markets), every market is listed directly, supply
and borrow caps are unlimited, ``minLiquidatableCollateral`` is 0 (so a plain
``liquidateBorrow`` works on any account in shortfall), and reserves stay in each market (the
reduce-reserves interval is set beyond any scenario, as in Compound v2).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from eth_utils import to_checksum_address

from postmortem.devchain.chain import Artifacts, Chain, address_for
from postmortem.errors import PostmortemError
from postmortem.paths import NODE_MODULES, SETUP_COMMAND

VENUS_PACKAGE = "@venusprotocol/isolated-pools"
# The artifacts the market is made of: our name -> path inside the package's artifacts/ folder.
VENUS_ARTIFACTS = {
    "VenusComptroller": "contracts/Comptroller.sol/Comptroller.json",
    "VenusVToken": "contracts/VToken.sol/VToken.json",
    "VenusWhitePaperInterestRateModel": "contracts/WhitePaperInterestRateModel.sol/WhitePaperInterestRateModel.json",
    "VenusAccessControlManager":
        "@venusprotocol/governance-contracts/contracts/Governance/AccessControlManager.sol/AccessControlManager.json",
    "VenusTransparentUpgradeableProxy":
        "hardhat-deploy/solc_0.8/openzeppelin/proxy/transparent/TransparentUpgradeableProxy.sol/"
        "TransparentUpgradeableProxy.json",
}

ROLES = {
    "deployer": address_for("compound:deployer"),       # owner of everything; plays the PoolRegistry
    "proxy_admin": address_for("compound:proxy-admin"),  # admin of the proxies (never calls through them)
}
MAX_UINT = 2**256 - 1
MANTISSA = 10**18
# Accrued reserves stay in the market: the reduce-reserves interval (seconds) exceeds any scenario.
REDUCE_RESERVES_DELTA = 10**12
# The Comptroller functions the deployer is allowed to call through the AccessControlManager.
ACM_FUNCTIONS = (
    "setCloseFactor(uint256)",
    "setCollateralFactor(address,uint256,uint256)",
    "setLiquidationIncentive(uint256)",
    "setMarketBorrowCaps(address[],uint256[])",
    "setMarketSupplyCaps(address[],uint256[])",
    "setMinLiquidatableCollateral(uint256)",
    "setReduceReservesBlockDelta(uint256)",
    "setProtocolSeizeShare(uint256)",
)


def venus_package_dir() -> Path:
    return NODE_MODULES / VENUS_PACKAGE


def venus_version() -> str:
    pkg = venus_package_dir() / "package.json"
    if not pkg.exists():
        raise PostmortemError(f"npm {VENUS_PACKAGE} is not installed in {NODE_MODULES}; run `{SETUP_COMMAND}` first")
    return json.loads(pkg.read_text())["version"]


@lru_cache(maxsize=1)
def venus_artifacts() -> dict[str, dict]:
    """ABI and creation bytecode of the Venus contracts, read from the npm package."""
    root = venus_package_dir() / "artifacts"
    venus_version()  # a clear error when the package is missing
    out = {}
    for name, rel in VENUS_ARTIFACTS.items():
        path = root / rel
        if not path.exists():
            raise PostmortemError(f"{VENUS_PACKAGE} {venus_version()} has no artifact {rel}; run `{SETUP_COMMAND}` "
                                  "to install the version package.json pins")
        art = json.loads(path.read_text())
        if art.get("linkReferences"):
            raise PostmortemError(f"artifact {rel} needs linked libraries, which this deployer does not do")
        out[name] = {"source": f"{VENUS_PACKAGE}/{rel}", "abi": art["abi"], "bytecode": art["bytecode"],
                     "linkReferences": {}}
    return out


def load_artifacts() -> Artifacts:
    """The project's compiled contracts plus the Venus artifacts, in one set."""
    own = Artifacts.load()
    return Artifacts({**own.contracts, **venus_artifacts()})


def variant() -> str:
    return f"venus-isolated-pools-{venus_version()}"


def _proxy(chain: Chain, impl_name: str, impl_address: str, init_fn_args: tuple) -> str:
    """A transparent proxy in front of ``impl_address`` whose constructor calls ``initialize``."""
    impl = chain.contract(impl_name, impl_address)
    data = impl.functions.initialize(*init_fn_args)._encode_transaction_data()
    proxy = chain.deploy("VenusTransparentUpgradeableProxy", impl_address, ROLES["proxy_admin"], data)
    return proxy.address


def price_units(usd: str, decimals: int) -> int:
    """A USD price in the Compound oracle's units: USD x 1e(36 - underlying decimals), exactly."""
    from decimal import Decimal

    value = Decimal(str(usd)) * (Decimal(10) ** (36 - decimals))
    if value != value.to_integral_value():
        raise PostmortemError(f"price {usd} has more digits than the oracle keeps for {decimals} decimals")
    return int(value)


def mantissa(value: str) -> int:
    from decimal import Decimal

    v = Decimal(str(value)) * MANTISSA
    if v != v.to_integral_value():
        raise PostmortemError(f"{value} has more than 18 decimals")
    return int(v)


def deploy_market(chain: Chain, world: dict) -> dict:
    """Deploy the pool ``world`` describes; returns the address book (manifest ``addresses``)."""
    d = ROLES["deployer"]
    chain.deployer = d
    for addr in ROLES.values():
        chain.fund(addr)
    acm = chain.deploy("VenusAccessControlManager")
    for sig in ACM_FUNCTIONS:
        chain.send(acm.functions.giveCallPermission("0x" + "00" * 20, sig, d), d, label=f"permit {sig}")
    sink = chain.deploy("ReserveSink")
    oracle = chain.deploy("SteerableVenusOracle")
    multicall = chain.deploy("Multicall3Like")

    comp_impl = chain.deploy("VenusComptroller", d)
    comp_addr = _proxy(chain, "VenusComptroller", comp_impl.address, (int(world.get("max_loops", 100)), acm.address))
    comp = chain.contract("VenusComptroller", comp_addr)
    chain.send(comp.functions.setPriceOracle(oracle.address), d, label="setPriceOracle")
    chain.send(comp.functions.setCloseFactor(mantissa(world["close_factor"])), d, label="setCloseFactor")
    chain.send(comp.functions.setLiquidationIncentive(mantissa(world["liquidation_incentive"])), d,
               label="setLiquidationIncentive")
    chain.send(comp.functions.setMinLiquidatableCollateral(0), d, label="setMinLiquidatableCollateral")

    vtoken_impl = chain.deploy("VenusVToken", True, 0, MANTISSA)
    book: dict = {"comptroller": comp_addr, "oracle": oracle.address, "multicall3": multicall.address,
                  "access_control_manager": acm.address, "protocol_share_reserve": sink.address,
                  "markets": {}, "accounts": {}}
    vtoken_decimals = 8
    for sym, m in world["markets"].items():
        dec = int(m["decimals"])
        token = chain.deploy("TestERC20", m.get("name", sym), sym, dec)
        irm = chain.deploy("VenusWhitePaperInterestRateModel", mantissa(m["base_rate_per_year"]),
                           mantissa(m["multiplier_per_year"]), True, 0)
        init = (token.address, comp_addr, irm.address, 2 * 10 ** (dec + 8), f"Venus {sym}", f"v{sym}",
                vtoken_decimals, d, acm.address, (sink.address, sink.address), mantissa(m["reserve_factor"]))
        vtoken_addr = _proxy(chain, "VenusVToken", vtoken_impl.address, init)
        vtoken = chain.contract("VenusVToken", vtoken_addr)
        chain.send(oracle.functions.setUnderlyingPrice(vtoken_addr, token.address, price_units(m["price_usd"], dec)),
                   d, label=f"price {sym}")
        chain.send(comp.functions.supportMarket(vtoken_addr), d, label=f"supportMarket {sym}")
        chain.send(comp.functions.setMarketSupplyCaps([vtoken_addr], [MAX_UINT]), d, label="supply cap")
        chain.send(comp.functions.setMarketBorrowCaps([vtoken_addr], [MAX_UINT]), d, label="borrow cap")
        chain.send(comp.functions.setCollateralFactor(vtoken_addr, mantissa(m["collateral_factor"]),
                                                      mantissa(m["liquidation_threshold"])), d,
                   label=f"setCollateralFactor {sym}")
        chain.send(vtoken.functions.setReduceReservesBlockDelta(REDUCE_RESERVES_DELTA), d, label="reserves delta")
        if "protocol_seize_share" in m:
            chain.send(vtoken.functions.setProtocolSeizeShare(mantissa(m["protocol_seize_share"])), d,
                       label="setProtocolSeizeShare")
        book["markets"][sym] = {"vtoken": vtoken_addr, "underlying": token.address, "decimals": dec,
                                "vtoken_decimals": vtoken_decimals, "interest_rate_model": irm.address}
    return {k: (to_checksum_address(v) if isinstance(v, str) else v) for k, v in book.items()}
