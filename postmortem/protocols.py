"""The protocol families postmortem knows: the one list every stage dispatches on.

A protocol adapter owns what differs between lending protocols: its event catalogue and decoded
tables, market discovery, the start snapshot, the position book, its exact math per revision or
fork, its liquidation rules, and the hooks of its price sources. Everything else (the JSON-RPC
client, the warehouse, SQL, the run records, the report renderers) is shared.

This module is the foundation's half of the boundary: each family's name (the ``protocol`` of an
incident file), its variants and where its stage entry points live. The stages hold the other
half, a small table from family name to their own entry point (``ingest/adapters.py``,
``replay/adapters.py``, ``reports/adapters.py``); ``postmortem/pipeline.py`` strings the three
together. ``tests/test_compound_adapter.py`` checks that every family here has an entry in each.
"""

from __future__ import annotations

from dataclasses import dataclass

from postmortem.errors import PostmortemError

DEFAULT_PROTOCOL = "aave-v3"


@dataclass(frozen=True)
class ProtocolFamily:
    """One protocol family: its name, what its markets are called in an incident file, its
    variants (revisions or forks with their own math) and its modules, stage by stage."""

    name: str
    title: str
    market_contract: str          # the contract an incident names per market ("pool", "comptroller")
    variants: tuple[str, ...]
    default_variant: str
    modules: dict                 # stage -> the module holding the family's entry point (documentation)


PROTOCOLS: dict[str, ProtocolFamily] = {
    "aave-v3": ProtocolFamily(
        name="aave-v3", title="Aave v3", market_contract="pool",
        variants=("3.0", "3.3", "3.4", "3.6"), default_variant="3.6",
        modules={"math": "postmortem.replay.aave_math", "events": "postmortem.ingest.events",
                 "ingest": "postmortem.ingest.pipeline", "replay": "postmortem.replay.engine",
                 "report": "postmortem.reports.api"},
    ),
    "compound-v2": ProtocolFamily(
        name="compound-v2", title="Compound v2 lineage (Compound, Moonwell, Venus)", market_contract="comptroller",
        variants=("compound-2020", "compound-2.9", "moonwell", "venus-isolated"),
        default_variant="compound-2.9",
        modules={"math": "postmortem.replay.compound_v2", "events": "postmortem.ingest.compound_events",
                 "ingest": "postmortem.ingest.compound", "replay": "postmortem.replay.compound_replay",
                 "report": "postmortem.reports.compound"},
    ),
}


def protocol_family(name: str | None) -> ProtocolFamily:
    """The family called ``name`` (None: Aave v3, the default of incident files without ``protocol``)."""
    name = name or DEFAULT_PROTOCOL
    if name not in PROTOCOLS:
        raise PostmortemError(f"unknown protocol {name!r}; known protocols: {', '.join(sorted(PROTOCOLS))} "
                              "(set `protocol = ...` in the incident file to one of them)")
    return PROTOCOLS[name]


def check_variant(family: ProtocolFamily, variant: str | None) -> str:
    """``variant`` if the family has it (None: the family's default), else a one-sentence error."""
    variant = variant or family.default_variant
    if variant not in family.variants:
        raise PostmortemError(f"unknown {family.name} variant {variant!r}; known: {', '.join(family.variants)} "
                              "(set `variant = ...` in the incident file)")
    return variant
