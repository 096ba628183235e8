"""The incident catalog: ``data/incidents/*.toml``, one file per incident.

An incident names its chain, markets (Pool addresses), block range, how far back users are
looked for, the finality to respect and the true-price model per asset. A ``source =
"devchain"`` incident takes chain id, pools and range from the devchain manifest.

``protocol`` names the protocol family (:mod:`postmortem.protocols`; default ``"aave-v3"``). A
``"compound-v2"`` incident names a ``comptroller`` instead of pools, its ``variant`` (the math it
runs: ``compound-2020``, ``compound-2.9``, ``moonwell``, ``venus-isolated``) and its markets as
``[markets.SYMBOL]`` with ``vtoken``, ``underlying`` and ``decimals``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from postmortem.devchain_manifest import manifest_path, read_manifest
from postmortem.errors import PostmortemError
from postmortem.paths import DEVCHAIN_DIR, INCIDENTS_DIR
from postmortem.protocols import DEFAULT_PROTOCOL, check_variant, protocol_family


@dataclass
class Incident:
    id: str
    title: str
    chain_id: int
    pools: dict[str, str]
    from_block: int
    to_block: int
    users_since: int
    finality: str = "finalized"
    price_grid: int = 0
    true_price: dict[str, dict] = field(default_factory=dict)
    eth_asset: str | None = None
    window_first_block: int | None = None
    window_last_block: int | None = None
    source: str = "chain"
    raw: dict = field(default_factory=dict)
    protocol: str = DEFAULT_PROTOCOL
    variant: str | None = None
    comptroller: str | None = None
    # Compound v2 lineage: SYMBOL -> {"vtoken", "underlying", "decimals"} (addresses lowercase)
    ctokens: dict[str, dict] = field(default_factory=dict)


def catalog(directory: Path | None = None) -> list[dict]:
    directory = directory or INCIDENTS_DIR
    return [tomllib.loads(p.read_text()) for p in sorted(directory.glob("*.toml"))]


def incident_file(incident_id: str, directory: Path | None = None) -> tuple[dict, Path]:
    """The incident's catalog file, parsed (the one place that reads it), and its path."""
    directory = directory or INCIDENTS_DIR
    path = directory / f"{incident_id}.toml"
    if not path.exists():
        known = ", ".join(d["id"] for d in catalog(directory))
        raise PostmortemError(f"unknown incident {incident_id!r}; known incidents: {known} (see `postmortem incidents`)")
    try:
        return tomllib.loads(path.read_text()), path
    except tomllib.TOMLDecodeError as exc:
        raise PostmortemError(f"the incident file {path} is not valid TOML ({exc}); fix it or restore it from the "
                              "catalog") from None


def incident_protocol(incident_id: str, directory: Path | None = None) -> str:
    """The protocol family an incident file names (``aave-v3`` when it names none), or ``aave-v3``
    for an id the catalog does not hold: the caller's own checks then say what is wrong."""
    path = (directory or INCIDENTS_DIR) / f"{incident_id}.toml"
    try:
        return str(tomllib.loads(path.read_text()).get("protocol") or DEFAULT_PROTOCOL)
    except (OSError, tomllib.TOMLDecodeError, ValueError):
        return DEFAULT_PROTOCOL


def load_incident(incident_id: str, *, directory: Path | None = None, devchain_dir: Path | None = None) -> Incident:
    raw, _path = incident_file(incident_id, directory)
    family = protocol_family(raw.get("protocol"))
    if raw.get("source") == "devchain":
        return _from_devchain(raw, devchain_dir or DEVCHAIN_DIR)
    if family.name == "compound-v2":
        return _compound(raw, family)
    return Incident(
        id=raw["id"], title=raw.get("title", raw["id"]), chain_id=int(raw["chain_id"]),
        pools={k: v["pool"].lower() for k, v in raw.get("markets", {}).items()},
        from_block=int(raw["from_block"]), to_block=int(raw["to_block"]),
        users_since=int(raw.get("users_since", 0)), finality=raw.get("finality", "finalized"),
        price_grid=int(raw.get("price_grid", 0)), true_price=raw.get("true_price", {}),
        eth_asset=(raw.get("eth_asset") or "").lower() or None,
        window_first_block=raw.get("window_first_block"), window_last_block=raw.get("window_last_block"),
        raw=raw,
    )


def devchain_window(manifest: dict, incident_id: str = "devchain", *, raw: dict | None = None,
                    from_block: int | None = None) -> Incident:
    """The incident a devchain manifest describes: its pools, chain id, and its scenario's
    timeline as the range (``from_block`` moves the start, e.g. to include the set-up)."""
    raw = raw or {}
    s = manifest["summary"]
    return Incident(
        id=incident_id, title=raw.get("title", incident_id), chain_id=int(manifest["chain_id"]),
        pools={k: v["pool"].lower() for k, v in manifest["addresses"]["markets"].items()},
        from_block=int(s["setup_end_block"]) + 1 if from_block is None else from_block, to_block=int(s["end_block"]),
        users_since=int(s["deploy_block"]), finality=raw.get("finality", "latest"),
        price_grid=int(raw.get("price_grid", 0)), true_price=raw.get("true_price", {"wstETH": {"model": "uncapped"}}),
        eth_asset=manifest["addresses"]["tokens"]["WETH"]["address"].lower(),
        source="devchain", raw={**raw, "rpc_url": manifest["rpc_url"]},
    )


def _from_devchain(raw: dict, devchain_dir: Path) -> Incident:
    m = _devchain_manifest_for(raw, devchain_dir)
    if protocol_family(raw.get("protocol")).name == "compound-v2":
        return compound_devchain_window(m, raw["id"], raw=raw)
    return devchain_window(m, raw["id"], raw=raw)


def _ctokens(markets: dict, where: str) -> dict[str, dict]:
    out = {}
    for sym, m in markets.items():
        try:
            out[sym] = {"vtoken": str(m["vtoken"]).lower(), "underlying": str(m["underlying"]).lower(),
                        "decimals": int(m["decimals"])}
        except (KeyError, TypeError, ValueError):
            raise PostmortemError(f"market {sym} in {where} needs vtoken, underlying and decimals; add them") from None
    if not out:
        raise PostmortemError(f"{where} names no markets; add a [markets.SYMBOL] table with vtoken, underlying and "
                              "decimals")
    return out


def _compound(raw: dict, family) -> Incident:
    """A Compound v2 lineage incident from its catalog file."""
    if not raw.get("comptroller"):
        raise PostmortemError(f"the incident {raw.get('id')} is a compound-v2 incident without a comptroller; add "
                              "`comptroller = \"0x...\"` (the Unitroller address)")
    return Incident(
        id=raw["id"], title=raw.get("title", raw["id"]), chain_id=int(raw["chain_id"]), pools={},
        from_block=int(raw["from_block"]), to_block=int(raw["to_block"]),
        users_since=int(raw.get("users_since", 0)), finality=raw.get("finality", "finalized"),
        price_grid=int(raw.get("price_grid", 0)), true_price=raw.get("true_price", {}),
        eth_asset=(raw.get("eth_asset") or "").lower() or None,
        window_first_block=raw.get("window_first_block"), window_last_block=raw.get("window_last_block"),
        raw=raw, protocol=family.name, variant=check_variant(family, raw.get("variant")),
        comptroller=raw["comptroller"].lower(), ctokens=_ctokens(raw.get("markets", {}), f"incident {raw['id']}"),
    )


def _variant_of(text: str | None) -> str | None:
    """A devchain manifest's variant names the package it deployed (``venus-isolated-pools-4.4.0``):
    the math it runs is the family's variant of that name."""
    if text and text.startswith("venus-isolated"):
        return "venus-isolated"
    return text


def compound_devchain_window(manifest: dict, incident_id: str = "devchain", *, raw: dict | None = None,
                             from_block: int | None = None) -> Incident:
    """The Compound v2 lineage incident a devchain manifest describes (its comptroller, markets,
    chain id, the scenario's timeline as the range and its true prices as constants)."""
    raw = raw or {}
    family = protocol_family("compound-v2")
    s = manifest["summary"]
    a = manifest["addresses"]
    true_price = raw.get("true_price") or {
        sym: {"model": "constant_raw", "price": str(int(v))} for sym, v in (manifest.get("true_prices") or {}).items()}
    return Incident(
        id=incident_id, title=raw.get("title", incident_id), chain_id=int(manifest["chain_id"]), pools={},
        from_block=int(s["start_block"]) if from_block is None else from_block, to_block=int(s["end_block"]),
        users_since=int(s["deploy_block"]), finality=raw.get("finality", "latest"), price_grid=0,
        true_price=true_price, source="devchain", raw={**raw, "rpc_url": manifest["rpc_url"]},
        protocol=family.name, variant=check_variant(family, raw.get("variant") or _variant_of(manifest.get("variant"))),
        comptroller=a["comptroller"].lower(),
        ctokens=_ctokens({k: v for k, v in a["markets"].items()}, "the devchain manifest"),
    )


def _devchain_manifest_for(raw: dict, devchain_dir: Path) -> dict:
    """The manifest of the devchain that runs the entry's scenario: the default port's
    (``devchain_dir/manifest.json``), else the one devchain on another port
    (``devchain_dir/port-P/``) that runs it."""
    want = raw.get("scenario")
    fix = f"start it with `postmortem devchain start --scenario {want}`"
    default = manifest_path(devchain_dir)
    m = read_manifest(devchain_dir) if default.exists() else None
    if m is not None and m.get("scenario") == want:
        return m
    others = []
    for sub in sorted(devchain_dir.glob("port-*")):
        if manifest_path(sub).exists():
            try:
                other = read_manifest(sub)
            except PostmortemError:
                continue
            if other.get("scenario") == want:
                others.append((sub, other))
    if len(others) == 1:
        return others[0][1]
    if len(others) > 1:
        raise PostmortemError(f"{len(others)} devchains run scenario {want!r} "
                              f"({', '.join(str(p) for p, _ in others)}); stop all but one "
                              "(`postmortem devchain stop --port P`)")
    if m is None:
        raise PostmortemError(f"no devchain runs scenario {want!r} (no manifest at {default} or in "
                              f"{devchain_dir}/port-*/); {fix}")
    raise PostmortemError(f"the devchain runs scenario {m.get('scenario')!r}, not {want!r}; restart it with "
                          f"`postmortem devchain start --scenario {want}` (or start one beside it with --port P)")
