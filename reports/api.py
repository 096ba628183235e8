"""The reports stage's library API: one call writes the post-mortem documents of an incident.

    paths = write_report("data/warehouse", "aave-v3-wsteth-capo-2026-03-10")
    paths["html"]  # data/reports/aave-v3-wsteth-capo-2026-03-10/report.html

Files: ``report.md``, ``report.html``, ``report.json``, ``reimbursements.csv`` and, with a
paid list, ``comparison.csv``. Each is written to a temporary name and renamed, so a reader
never sees half a file and an interrupted run leaves the previous report intact. A report that
refuses (incomplete data, numbers that disagree) writes nothing. After a report is written, the
files of that list it did not write this time (e.g. a ``comparison.csv`` of an earlier
``--compare-paid``) are removed; no other file in the folder is touched.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from postmortem import atomic
from postmortem.errors import PostmortemError
from postmortem.reports.model import ReportModel, build_model
from postmortem.reports.policy import PaidList, Policy

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


def render(model: ReportModel, formats: tuple[str, ...] = FORMATS) -> dict[str, str]:
    """The documents as text, by format (plus ``comparison_csv`` when the model has a comparison)."""
    from postmortem.reports.render_csv import render_comparison_csv, render_csv
    from postmortem.reports.render_html import render_html
    from postmortem.reports.render_json import render_json
    from postmortem.reports.render_md import render_md

    renderers = {"md": render_md, "html": render_html, "json": render_json, "csv": render_csv}
    out = {f: renderers[f](model) for f in formats}
    if "csv" in formats and model.comparison is not None:
        out["comparison_csv"] = render_comparison_csv(model)
    verify_documents(model, out)
    return out


def verify_documents(model: ReportModel, documents: dict[str, str]) -> None:
    """Read back what the renderers wrote: the CSV's and the JSON's owed total must be the model's, to the wei.

    This is the written half of the report's "one number" check; a difference is a bug, and the
    report refuses to publish rather than write documents that disagree.
    """
    owed = model.quantities()["owed_wei"]
    found: dict[str, int] = {}
    if "csv" in documents:
        rows = list(csv.DictReader(io.StringIO(documents["csv"])))
        found["reimbursements.csv total_wei"] = sum(int(r["total_wei"]) for r in rows)
        found["reimbursements.csv parts"] = sum(int(r["oracle_loss_wei"]) + int(r["bonus_loss_wei"])
                                                + int(r["goodwill_wei"]) for r in rows)
    if "json" in documents:
        data = json.loads(documents["json"])
        found["report.json quantities.owed_wei"] = int(data["quantities"]["owed_wei"])
        found["report.json reimbursement rows"] = sum(int(r["total_wei"]) for r in data["reimbursement"]["rows"])
    wrong = {k: v for k, v in found.items() if v != owed}
    if wrong:
        raise PostmortemError(
            "the written documents disagree with the report's owed total of "
            f"{owed} wei ({', '.join(f'{k} = {v}' for k, v in sorted(wrong.items()))}); nothing was written, and this "
            "is a bug in postmortem's reports to report with the warehouse")


def _remove_stale(out: Path, written: set[str]) -> list[Path]:
    """Remove report files postmortem writes (and only those) that this run did not write: a
    ``comparison.csv`` from an earlier ``--compare-paid``, a format not asked for this time, or a
    temporary file of an interrupted run. Any other file in the folder is left alone."""
    removed = []
    names = set(FILE_NAMES.values())
    for path in sorted(out.iterdir()):
        if not path.is_file() or path.is_symlink():
            continue
        stale = path.name in names and path.name not in written
        tmp = path.name.startswith(".") and path.name.endswith(".tmp") and any(
            path.name.startswith(f".{n}.") and path.name[len(n) + 2:-4].isdigit() for n in names)
        if stale or tmp:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


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
                    tolerance_wei: int = 0, whatif_runs: tuple[str, ...] | list[str] = ()) -> tuple[ReportModel, dict[str, Path]]:
    """``write_report`` that also returns the model (for callers that print its headline)."""
    from postmortem.incidents import incident_protocol

    protocol = incident_protocol(incident_id)
    if protocol != "aave-v3":  # another protocol family's report
        from postmortem.reports.adapters import protocol_report

        return protocol_report(protocol)(warehouse_root, incident_id, out_dir, parse_formats(formats))
    formats = parse_formats(formats)
    out = Path(out_dir).expanduser() if out_dir is not None else default_out_dir(incident_id)
    root = Path(warehouse_root).expanduser().resolve()
    resolved = out.resolve()
    if resolved == root or root in resolved.parents:
        raise PostmortemError(f"refusing to write the report inside the warehouse ({resolved}); "
                              f"choose an --out folder outside {root}")
    model = build_model(root, incident_id, run_id=run_id, policy=policy, compare_paid=compare_paid,
                        tolerance_wei=tolerance_wei, whatif_runs=whatif_runs)
    documents = render(model, formats)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PostmortemError(f"cannot create the report folder {out} ({exc.strerror}); choose another --out") from None
    paths: dict[str, Path] = {}
    for key, data in documents.items():
        path = out / FILE_NAMES[key]
        atomic.write_text(path, data)
        paths[key] = path
    # Files of an earlier report under another policy or with other formats would contradict this one.
    _remove_stale(out, {p.name for p in paths.values()})
    return model, paths
