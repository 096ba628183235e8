"""Where a devchain's manifest lives and how it is read: the foundation's view of a local chain.

``postmortem devchain start`` writes the manifest (``devchain.manager``); the incident catalog's
``devchain-*`` entries read it here, so the catalog does not depend on the stage that runs anvil.
"""

from __future__ import annotations

import json
from pathlib import Path

from postmortem.errors import PostmortemError
from postmortem.paths import DEVCHAIN_DIR

MANIFEST_NAME = "manifest.json"


def manifest_path(directory: Path | None = None) -> Path:
    return (directory or DEVCHAIN_DIR) / MANIFEST_NAME


def read_manifest(directory: Path | None = None) -> dict:
    path = manifest_path(directory)
    if not path.exists():
        raise PostmortemError(
            f"no devchain manifest at {path}; start one with `postmortem devchain start --scenario wsteth-capo-2026-03-10`"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise PostmortemError(f"the devchain manifest {path} is not valid JSON; restart the devchain with "
                              "`postmortem devchain start`") from None
