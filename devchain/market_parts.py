"""Pieces every market deployment shares, whatever the Aave revision: the roles, exact unit
conversion, the capped-ratio wstETH adapter and the reserves' risk parameters."""

from __future__ import annotations

from decimal import Decimal

from postmortem.devchain.chain import Chain, address_for

ZERO = "0x0000000000000000000000000000000000000000"

ROLES = {
    "deployer": address_for("deployer"),
    "pool_admin": address_for("pool-admin"),
    "risk_admin": address_for("risk-admin"),
    "treasury": address_for("treasury"),
    "feed_owner": address_for("deployer"),
}


def units(amount: str | int | Decimal, decimals: int) -> int:
    """Exact conversion of a human amount ("1.5") to base units; refuses sub-unit precision."""
    value = Decimal(str(amount)) * (Decimal(10) ** decimals)
    if value != value.to_integral_value():
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(value)


def deploy_capo_adapter(chain: Chain, world: dict, book: dict, acl: str) -> None:
    """The shared capped-ratio wstETH adapter, governed by the first market's ACL manager."""
    capo = world["capo"]
    adapter = chain.deploy(
        "CappedRatioAdapter", acl, book["feeds"]["eth_usd"], book["steth"],
        "Capped wstETH / stETH(ETH) / USD", capo["minimum_snapshot_delay"],
        units(capo["snapshot_ratio"], 18), capo["snapshot_timestamp"], capo["max_yearly_growth_bps"],
    )
    book["feeds"]["wsteth_capo"] = adapter.address


def configure_reserves(chain: Chain, conf, pool, world: dict, book: dict, assets: list[str], sources: list[str],
                       admin: str) -> dict:
    """Risk parameters of every reserve (same calls in v3.0 and v3.6); returns each reserve's
    tokens as the pool reports them."""
    fee = world["liquidation_protocol_fee"]
    reserves = {}
    for sym in assets:
        a, tok = world["assets"][sym], book["tokens"][sym]["address"]
        chain.send(conf.functions.configureReserveAsCollateral(tok, a["ltv"], a["lt"], a["bonus"]), admin,
                   label=f"configureReserveAsCollateral({sym})")
        chain.send(conf.functions.setReserveBorrowing(tok, True), admin, label=f"setReserveBorrowing({sym})")
        chain.send(conf.functions.setReserveFactor(tok, a["reserve_factor"]), admin, label=f"setReserveFactor({sym})")
        chain.send(conf.functions.setLiquidationProtocolFee(tok, fee), admin, label=f"setLiquidationProtocolFee({sym})")
        rd = pool.functions.getReserveData(tok).call()
        reserves[sym] = {"underlying": tok, "a_token": rd[8], "variable_debt_token": rd[10],
                         "decimals": a["decimals"], "price_source": sources[assets.index(sym)]}
        if int(rd[9], 16):
            reserves[sym]["stable_debt_token"] = rd[9]  # v3.0 only
    return reserves


def configure_emode(chain: Chain, conf, e: dict, tokens: dict, admin: str) -> None:
    """One v3.6 eMode category (``setEModeCategory``) and its collateral and borrowable assets."""
    chain.send(conf.functions.setEModeCategory(e["id"], e["ltv"], e["lt"], e["bonus"], e["label"]), admin,
               label="setEModeCategory")
    for sym in e["collateral"]:
        chain.send(conf.functions.setAssetCollateralInEMode(tokens[sym]["address"], e["id"], True), admin,
                   label=f"setAssetCollateralInEMode({sym})")
    for sym in e["borrowable"]:
        chain.send(conf.functions.setAssetBorrowableInEMode(tokens[sym]["address"], e["id"], True), admin,
                   label=f"setAssetBorrowableInEMode({sym})")
