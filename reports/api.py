"""The reports stage's library API: one call writes the post-mortem documents of an incident.

    paths = write_report("data/warehouse", "aave-v3-wsteth-capo-2026-03-10")
    paths["html"]  # data/reports/aave-v3-wsteth-capo-2026-03-10/report.html

Files: ``report.md``, ``report.html``, ``report.json``, ``reimbursements.csv`` and, with a
paid list, ``comparison.csv``. Each is written to a temporary name and renamed, so a reader
never sees half a file and an interrupted run leaves the previous report intact.
"""

from __future__ import annotations

import os
from pathlib import Path

from postmortem.errors import PostmortemError
from reports.model import ReportModel, build_model
from reports.policy import PaidList, Policy

FORMATS = ("md", "html", "json", "csv")
FILE_NAMES = {"md": "report.md", "html": "report.html", "json": "report.json", "csv": "reimbursements.csv",
              "comparison_csv": "comparison.csv"}


def parse_formats(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"md,html"`` -> ``("md", "html")``; unknown names are a one-sentence error."""
    items = [f.strip().lower() for f in (text.split(",") if isinstance(text, str) else text) if f and f.strip()]
    unknown = [f for f in items if f not in FORMATS]
    if unknown:
        raise PostmortemError(f"unknown report format {', '.join(unknown)}; use any of {','.join(FORMATS)}")
    if not items:
        raise PostmortemError(f"no report format given; use any of {','.join(FORMATS)}")
    return tuple(dict.fromkeys(items))


def default_out_dir(incident_id: str) -> Path:
    from postmortem.paths import DEFAULT_REPORTS

    return Path(DEFAULT_REPORTS) / incident_id


def _write_atomic(path: Path, data: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def render(model: ReportModel, formats: tuple[str, ...] = FORMATS) -> dict[str, str]:
    """The documents as text, by format (plus ``comparison_csv`` when the model has a comparison)."""
    from reports.render_csv import render_comparison_csv, render_csv
    from reports.render_html import render_html
    from reports.render_json import render_json
    from reports.render_md import render_md

    renderers = {"md": render_md, "html": render_html, "json": render_json, "csv": render_csv}
    out = {f: renderers[f](model) for f in formats}
    if "csv" in formats and model.comparison is not None:
        out["comparison_csv"] = render_comparison_csv(model)
    return out


def write_report(warehouse_root: Path | str, incident_id: str, out_dir: Path | str | None = None,
                 formats: tuple[str, ...] | list[str] | str = FORMATS, policy: Policy | None = None,
                 compare_paid: Path | str | PaidList | None = None, *, run_id: str | None = None,
                 tolerance_wei: int = 0) -> dict[str, Path]:
    """Build the report of ``incident_id`` from the warehouse and write it; returns format -> path.

    ``out_dir`` defaults to ``data/reports/<incident_id>/`` (``POSTMORTEM_REPORTS`` moves it).
    ``policy`` values reimbursements (default: chain prices); ``compare_paid`` is a CSV
    (``user,amount_eth``) of paid amounts to compare with, line by line.
    """
    return build_and_write(warehouse_root, incident_id, out_dir, formats, policy, compare_paid,
                           run_id=run_id, tolerance_wei=tolerance_wei)[1]


def build_and_write(warehouse_root: Path | str, incident_id: str, out_dir: Path | str | None = None,
                    formats: tuple[str, ...] | list[str] | str = FORMATS, policy: Policy | None = None,
                    compare_paid: Path | str | PaidList | None = None, *, run_id: str | None = None,
                    tolerance_wei: int = 0) -> tuple[ReportModel, dict[str, Path]]:
    """``write_report`` that also returns the model (for callers that print its headline)."""
    formats = parse_formats(formats)
    out = Path(out_dir).expanduser() if out_dir is not None else default_out_dir(incident_id)
    root = Path(warehouse_root).expanduser().resolve()
    resolved = out.resolve()
    if resolved == root or root in resolved.parents:
        raise PostmortemError(f"refusing to write the report inside the warehouse ({resolved}); "
                              f"choose an --out folder outside {root}")
    model = build_model(root, incident_id, run_id=run_id, policy=policy, compare_paid=compare_paid,
                        tolerance_wei=tolerance_wei)
    documents = render(model, formats)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PostmortemError(f"cannot create the report folder {out} ({exc.strerror}); choose another --out") from None
    paths: dict[str, Path] = {}
    for key, data in documents.items():
        path = out / FILE_NAMES[key]
        _write_atomic(path, data)
        paths[key] = path
    return model, paths
