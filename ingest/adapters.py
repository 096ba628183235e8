"""The ingest stage's half of the protocol boundary: protocol family -> its ingest function.

Aave v3's is :func:`postmortem.ingest.pipeline.ingest` itself, which hands every other family's
incident to the function named here (same keyword arguments; see :mod:`postmortem.protocols`).
"""

from __future__ import annotations

from postmortem.errors import PostmortemError
from postmortem.ingest.compound import ingest_compound

INGEST = {"compound-v2": ingest_compound}


def protocol_ingest(protocol: str):
    try:
        return INGEST[protocol]
    except KeyError:
        raise PostmortemError(f"ingest does not know protocol {protocol!r} yet; known: aave-v3, "
                              f"{', '.join(sorted(INGEST))}") from None
