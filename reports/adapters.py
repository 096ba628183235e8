"""The reports stage's half of the protocol boundary: protocol family -> its report writer.

Aave v3's is :func:`postmortem.reports.api.build_and_write` itself, which hands every other
family's incident to the writer named here (``(warehouse, incident_id, out_dir, formats)`` ->
``(model, paths)``; the model has ``headline()``; see :mod:`postmortem.protocols`).
"""

from __future__ import annotations

from postmortem.errors import PostmortemError
from postmortem.reports.compound import write_compound_report

REPORT = {"compound-v2": write_compound_report}


def protocol_report(protocol: str):
    try:
        return REPORT[protocol]
    except KeyError:
        raise PostmortemError(f"report does not know protocol {protocol!r} yet; known: aave-v3, "
                              f"{', '.join(sorted(REPORT))}") from None
