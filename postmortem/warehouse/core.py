"""The ``Warehouse`` object: one root folder, with the parts that read and write it mixed in.

Each part is its own module (``layout``, ``lock``, ``manifest``, ``store``, ``verify``, ``runs``,
``catalog``, ``views``); this class only holds the state they share.
"""

from __future__ import annotations

import threading
from pathlib import Path

from postmortem.warehouse.catalog import CatalogMixin
from postmortem.warehouse.jsonl import JsonLines
from postmortem.warehouse.layout import (
    CATALOG_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    RUNS_NAME,
    VIEWS_NAME,
    LayoutMixin,
)
from postmortem.warehouse.lock import LockMixin
from postmortem.warehouse.manifest import FileRecord, ManifestMixin
from postmortem.warehouse.runs import RunsMixin
from postmortem.warehouse.store import StoreMixin
from postmortem.warehouse.verify import VerifyMixin
from postmortem.warehouse.views import ViewsMixin


class Warehouse(LayoutMixin, LockMixin, ManifestMixin, StoreMixin, VerifyMixin, RunsMixin, CatalogMixin, ViewsMixin):
    """A warehouse rooted at ``root``; creating the object touches nothing on disk.

    Every method that changes the warehouse takes the writer lock for its duration, unless this
    process already holds it (``with warehouse.lock(...)``), so a second writer process fails
    fast with a message naming the holder instead of interleaving with it.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()
        self.manifest_path = self.root / MANIFEST_NAME
        self.runs_path = self.root / RUNS_NAME
        self.views_path = self.root / VIEWS_NAME
        self.catalog_path = self.root / CATALOG_NAME
        self.lock_path = self.root / LOCK_NAME
        self._manifest = JsonLines(self.manifest_path)
        self._runs = JsonLines(self.runs_path)
        self._live: dict[str, FileRecord] = {}
        self._applied = 0  # how many manifest records are folded into _live
        self._generation = 0  # which version of the manifest file _live was built from
        self._state_guard = threading.RLock()
        self.lock_note: str | None = None  # set when a stale lock was taken over

    def __repr__(self) -> str:
        return f"Warehouse({str(self.root)!r})"
