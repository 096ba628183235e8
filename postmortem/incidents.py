"""The incident catalog: ``data/incidents/*.toml``, one file per incident.

An incident names its chain, markets (Pool addresses), block range, how far back users are
looked for, the finality to respect and the true-price model per asset. A ``source =
"devchain"`` incident takes chain id, pools and range from the devchain manifest.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from postmortem.devchain_manifest import read_manifest
from postmortem.errors import PostmortemError
from postmortem.paths import DEVCHAIN_DIR, INCIDENTS_DIR


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


def load_incident(incident_id: str, *, directory: Path | None = None, devchain_dir: Path | None = None) -> Incident:
    raw, _path = incident_file(incident_id, directory)
    if raw.get("source") == "devchain":
        return _from_devchain(raw, devchain_dir or DEVCHAIN_DIR)
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
    m = read_manifest(devchain_dir)
    if m.get("scenario") != raw.get("scenario"):
        raise PostmortemError(
            f"the devchain runs scenario {m.get('scenario')!r}, not {raw.get('scenario')!r}; restart it with "
            f"`postmortem devchain start --scenario {raw.get('scenario')}`"
        )
    return devchain_window(m, raw["id"], raw=raw)
