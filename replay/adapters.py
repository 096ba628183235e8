"""The replay stage's half of the protocol boundary: protocol family -> its replay function.

Aave v3's is :func:`postmortem.replay.engine.replay` itself, which hands every other family's
incident to the function named here (same keyword arguments; see :mod:`postmortem.protocols`).
"""

from __future__ import annotations

from postmortem.errors import PostmortemError
from postmortem.replay.compound_replay import replay_compound

REPLAY = {"compound-v2": replay_compound}


def protocol_replay(protocol: str):
    try:
        return REPLAY[protocol]
    except KeyError:
        raise PostmortemError(f"replay does not know protocol {protocol!r} yet; known: aave-v3, "
                              f"{', '.join(sorted(REPLAY))}") from None
