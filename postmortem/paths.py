"""Where things live: the repo root, npm parts, build outputs, default data folders.

Every path can be moved with an environment variable so that tests and CI can use
temporary folders without touching a developer's own warehouse.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


NODE_MODULES = _env_path("POSTMORTEM_NODE_MODULES", REPO_ROOT / "node_modules")
BUILD_DIR = _env_path("POSTMORTEM_BUILD_DIR", REPO_ROOT / "build")
DATA_DIR = REPO_ROOT / "data"
DEFAULT_WAREHOUSE = _env_path("POSTMORTEM_WAREHOUSE", DATA_DIR / "warehouse")
DEFAULT_REPORTS = _env_path("POSTMORTEM_REPORTS", DATA_DIR / "reports")
DEVCHAIN_DIR = _env_path("POSTMORTEM_DEVCHAIN_DIR", DATA_DIR / "devchain")
INCIDENTS_DIR = DATA_DIR / "incidents"

ANVIL_BIN = NODE_MODULES / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
