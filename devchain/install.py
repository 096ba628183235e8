"""Install the local chain's npm parts (anvil, solc-js, the Aave sources, the Venus artifacts) and compile.

From a checkout, ``make setup`` does this; an installed postmortem does it with
``postmortem devchain setup`` into ``$POSTMORTEM_HOME`` (see ``postmortem.paths``), from the npm
manifest and lock the package carries, so both install the same pinned versions.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
from pathlib import Path

from postmortem.errors import PostmortemError
from postmortem.paths import IN_CHECKOUT, NODE_MODULES, NPM_MANIFEST_DIR, anvil_binary_path

# .npmrc: registry packages are data here; no install scripts, no peer dependencies (see it).
NPM_FILES = ("package.json", "package-lock.json", ".npmrc")


def parts_ready() -> bool:
    """True when anvil for this platform and the npm parts the compiler needs are installed."""
    from postmortem.devchain.compile import NPM_PARTS

    anvil = anvil_binary_path()
    return bool(anvil and anvil.exists()) and all((NODE_MODULES / p).exists() for p in NPM_PARTS)


def install_npm_parts(progress: bool = True) -> Path:
    """``npm install`` of the pinned parts into ``NODE_MODULES``'s folder; returns that folder."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise PostmortemError("Node.js and npm are not on PATH; install Node.js 20+ with npm, then re-run this command")
    target = NODE_MODULES.parent
    target.mkdir(parents=True, exist_ok=True)
    if not IN_CHECKOUT or target.resolve() != NPM_MANIFEST_DIR.resolve():
        for name in NPM_FILES:
            src, dst = NPM_MANIFEST_DIR / name, target / name
            if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
                shutil.copyfile(src, dst)
    if progress:
        print(f"devchain: npm install of anvil, solc-js, the Aave sources and the Venus artifacts into {target} ...",
              flush=True)
    # `npm install`, not `npm ci`: anvil's per-platform optional packages are chosen at install time.
    proc = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=target,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise PostmortemError(f"npm install failed in {target}: {' / '.join(tail)}; check the network to the npm "
                              "registry and re-run")
    return target


def setup(progress: bool = True, force: bool = False) -> Path:
    """Install what is missing and compile (cached); returns the compiled artifacts' path."""
    from postmortem.devchain.compile import compile_all

    if force or not parts_ready():
        install_npm_parts(progress=progress)
    return compile_all(quiet=not progress)
