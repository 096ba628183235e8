"""Where things live: the data the package carries, the npm parts, build outputs, data folders.

Two ways to run postmortem, one set of names:

* from a checkout (``make setup``): the npm parts in ``node_modules/`` and the compiled contracts in
  ``build/`` beside the code, data folders under ``data/``;
* installed from a wheel (``pip install .``): the npm parts and compiled contracts in a per-user
  folder (``$POSTMORTEM_HOME``, default ``~/.local/share/postmortem``; ``postmortem devchain setup``
  fills it), data folders under ``./data/`` of the folder you run in.

Every path can be moved with an environment variable, so that tests and CI can use temporary
folders without touching a developer's own warehouse.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# In a checkout the stage folders sit beside this package; in a wheel they are inside it.
REPO_ROOT = PACKAGE_DIR.parent
IN_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file() and (REPO_ROOT / "devchain" / "__init__.py").is_file()


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _user_home() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "postmortem"


# Where the npm parts (node_modules/) and the compiled contracts (build/) live.
HOME = _env_path("POSTMORTEM_HOME", REPO_ROOT if IN_CHECKOUT else _user_home())
NODE_MODULES = _env_path("POSTMORTEM_NODE_MODULES", HOME / "node_modules")
BUILD_DIR = _env_path("POSTMORTEM_BUILD_DIR", HOME / "build")

# Data the package carries: the incident catalog (and, in devchain/, scenarios and contracts).
_CARRIED = PACKAGE_DIR / "data"
INCIDENTS_DIR = (_CARRIED if _CARRIED.is_dir() else REPO_ROOT / "data") / "incidents"
# The npm manifest of the local chain's parts (anvil, solc-js, the Aave sources).
NPM_MANIFEST_DIR = REPO_ROOT if IN_CHECKOUT else PACKAGE_DIR / "devchain" / "npm"

# Data folders written by the tool.
DATA_DIR = REPO_ROOT / "data" if IN_CHECKOUT else Path.cwd() / "data"
DEFAULT_WAREHOUSE = _env_path("POSTMORTEM_WAREHOUSE", DATA_DIR / "warehouse")
DEFAULT_REPORTS = _env_path("POSTMORTEM_REPORTS", DATA_DIR / "reports")
DEVCHAIN_DIR = _env_path("POSTMORTEM_DEVCHAIN_DIR", DATA_DIR / "devchain")

# The set-up command this install uses, for messages that say how to get a missing part.
SETUP_COMMAND = "make setup" if IN_CHECKOUT else "postmortem devchain setup"

# npm `@foundry-rs/anvil` ships one optional package per platform.
_ANVIL_PLATFORMS = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Linux", "arm64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
    ("Windows", "AMD64"): "anvil-win32-amd64",
}


def anvil_package() -> str | None:
    """The npm package name of anvil for this platform, or None when there is none."""
    return _ANVIL_PLATFORMS.get((platform.system(), platform.machine()))


def anvil_binary_path() -> Path | None:
    pkg = anvil_package()
    if pkg is None:
        return None
    exe = "anvil.exe" if platform.system() == "Windows" else "anvil"
    return NODE_MODULES / "@foundry-rs" / pkg / "bin" / exe
