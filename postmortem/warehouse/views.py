"""Views that stages register over the catalog's tables (``views.json``), re-created by every refresh."""

from __future__ import annotations

import json
from pathlib import Path

from postmortem import atomic, schema_docs
from postmortem.errors import PostmortemError
from postmortem.warehouse.catalog import ALL_RUNS_SUFFIX, CatalogSummary, _first_line
from postmortem.warehouse.layout import _DATASET_RE, RESERVED_NAMES


class ViewsMixin:
    """Registered views (the other parts come from the ``Warehouse`` it is mixed into)."""

    views_path: Path

    def _base_names(self) -> set[str]:
        """Names the catalog gives to file-backed views (datasets on disk and documented tables)."""
        documented = {d.name for d in schema_docs.all_tables()
                      if d.kind in (schema_docs.KIND_CHUNKED, schema_docs.KIND_OUTPUT, schema_docs.KIND_CATALOG)}
        outputs = {n for n, k in self.datasets().items() if k == "output"} | {
            d.name for d in schema_docs.all_tables() if d.kind == schema_docs.KIND_OUTPUT}
        return set(self.datasets()) | documented | RESERVED_NAMES | {n + ALL_RUNS_SUFFIX for n in outputs}

    def registered_views(self) -> dict[str, dict]:
        """Views stages registered: name -> {"sql": ..., "description": ...}, in creation order."""
        try:
            data = json.loads(self.views_path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise PostmortemError(f"{self.views_path} is not valid JSON ({exc}); fix or delete it and re-register views") from None
        return {v["name"]: {"sql": v["sql"], "description": v.get("description", "")} for v in data.get("views", [])}

    def register_view(self, name: str, sql: str, description: str = "") -> CatalogSummary:
        """Add (or replace) a SQL view over the base views, persisted so every refresh re-creates it.

        ``sql`` is one SELECT over catalog names (e.g. a human-unit view joining ``reserves``
        for decimals). The catalog is refreshed at once; if the view does not build, the
        registration is rolled back and a ``PostmortemError`` says why.
        """
        import duckdb

        if not _DATASET_RE.match(name) or name in RESERVED_NAMES:
            raise PostmortemError(f"view name {name!r} is not allowed; use lowercase letters, digits and '_' and not {sorted(RESERVED_NAMES)}")
        try:
            statements = duckdb.extract_statements(sql)
        except duckdb.Error as exc:
            raise PostmortemError(f"the SQL of view {name} does not parse: {_first_line(exc)}") from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise PostmortemError(f"the SQL of view {name} must be a single SELECT statement")
        if name in self._base_names():
            raise PostmortemError(f"{name} is already a dataset or documented table; pick another name for the view")
        with self._writing(f"register view {name}"):
            before = self.registered_views()
            views = dict(before)
            views.pop(name, None)  # re-registering moves it last, after anything it may use
            views[name] = {"sql": sql.strip().rstrip(";"), "description": description}
            self._save_views(views)
            try:
                summary = self.refresh_catalog()
            except BaseException:
                self._save_views(before)
                raise
            if name in summary.skipped:
                self._save_views(before)
                self.refresh_catalog()
                raise PostmortemError(f"view {name} does not build: {summary.skipped[name]}")
            return summary

    def unregister_view(self, name: str) -> None:
        """Remove a registered view and refresh the catalog."""
        with self._writing(f"unregister view {name}"):
            views = self.registered_views()
            if views.pop(name, None) is None:
                raise PostmortemError(f"no registered view named {name}; see views.json in the warehouse")
            self._save_views(views)
            self.refresh_catalog()

    def _save_views(self, views: dict[str, dict]) -> None:
        data = {"version": 1, "views": [{"name": k, **v} for k, v in views.items()]}
        self.root.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(self.views_path, (json.dumps(data, indent=2) + "\n").encode())
