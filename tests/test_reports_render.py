"""The documents: deterministic JSON and CSV, exact numbers, SQL beside every figure, one-file HTML."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import postmortem.paths
from postmortem.errors import PostmortemError
from postmortem.warehouse import Warehouse
from postmortem.reports.api import FILE_NAMES, parse_formats, write_report
from postmortem.reports.model import build_model
from postmortem.reports.render_html import render_html
from postmortem.reports.render_json import render_json
from postmortem.reports.render_md import render_md

from helpers.synthetic import INCIDENT, build_warehouse, reimbursable_wei
from helpers.synthetic import documented_schemas  # noqa: F401  (autouse fixture)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def syn(tmp_path_factory):
    return build_warehouse(tmp_path_factory.mktemp("reports-render") / "warehouse")


@pytest.fixture(scope="module")
def written(syn, tmp_path_factory):
    return write_report(syn.root, INCIDENT, tmp_path_factory.mktemp("out"))


def test_same_warehouse_same_bytes_across_processes(syn, tmp_path):
    """Two processes with different hash seeds write byte-identical JSON and CSV (and MD, HTML)."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"run{seed}"
        code = ("import sys; from reports.api import write_report; "
                f"write_report({str(syn.root)!r}, {INCIDENT!r}, {str(out)!r})")
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env, timeout=300)
        outs.append(out)
    for name in FILE_NAMES.values():
        a, b = outs[0] / name, outs[1] / name
        if a.exists():
            assert a.read_bytes() == b.read_bytes(), name


def test_json_is_exact_sorted_and_has_no_floats(written, syn):
    text = written["json"].read_text()
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def walk(x, path="$"):
        if isinstance(x, dict):
            for k, v in x.items():
                yield from walk(v, f"{path}.{k}")
        elif isinstance(x, list):
            for i, v in enumerate(x):
                yield from walk(v, f"{path}[{i}]")
        else:
            yield path, x

    for path, value in walk(data):
        assert not isinstance(value, (int, float)) or isinstance(value, bool), f"{path} is a JSON number"
    assert data["format"] == "postmortem-report/1"
    wrong = [r for r in syn.rows if r["verdict"] == "wrongly_eligible"]
    owed = sum(reimbursable_wei(syn.rows).values())
    assert data["reimbursement"]["totals"]["total_wei"] == str(owed)
    # Oracle loss is one number: every liquidation, its protocol-fee part included (the glossary's definition).
    oracle = sum(r["oracle_loss_eth_wei"] + r["fee_oracle_loss_eth_wei"] for r in syn.rows)
    assert data["figures"]["oracle_loss"]["value"]["eth_wei"] == data["quantities"]["oracle_loss_wei"] == str(oracle)
    assert data["figures"]["bonus_loss"]["value"]["eth_wei"] == str(sum(r["bonus_loss_eth_wei"] for r in wrong))
    assert data["quantities"]["owed_wei"] == str(owed)
    assert {g["key"] for g in data["glossary"]} >= {"oracle_loss_wei", "bonus_loss_wei", "owed_wei"}
    assert data["provenance"]["replay"]["parameters"]["health_band"] == "1.1"  # a recorded float, as its repr
    assert data["figures"]["liquidations"]["value"] == "13"
    assert data["divergence_ppm"] == "-28402"
    assert all(f["sql"].startswith(("SELECT", "WITH")) for f in data["figures"].values())
    # No clock time of the report run itself; only times that come from the warehouse.
    assert "refreshed_at" not in text


def test_csv_reimbursement_list(written, syn):
    lines = list(csv.DictReader(io.StringIO(written["csv"].read_text())))
    assert {x["user"]: int(x["total_wei"]) for x in lines} == reimbursable_wei(syn.rows)
    for x in lines:
        # oracle_loss_wei already holds its protocol-fee part (fee_oracle_loss_wei says how much of it).
        assert int(x["total_wei"]) == sum(int(x[k]) for k in ("oracle_loss_wei", "bonus_loss_wei", "goodwill_wei"))
        assert 0 <= int(x["fee_oracle_loss_wei"]) <= int(x["oracle_loss_wei"])
    totals = [int(x["total_wei"]) for x in lines]
    assert totals == sorted(totals, reverse=True)
    for x in lines:
        whole, frac = x["total_eth"].split(".")
        assert len(frac) == 18 and int(whole + frac) == int(x["total_wei"])
    assert "\r" not in written["csv"].read_text()


def test_markdown_has_the_sql_beside_every_figure(written, syn):
    md = written["md"].read_text()
    m = build_model(syn.root, INCIDENT)
    for key, f in m.figures.items():
        assert f"```sql\n{f.sql}\n```" in md, key
    assert md.startswith("# Post-mortem: wstETH mispricing")
    for heading in ("## Headline", "## Figures", "## Wrongly eligible liquidations", "## Reimbursement",
                    "## Liquidators and what they gained", "## Positions at risk that were not liquidated",
                    "## Glossary", "## Checks", "## Methodology", "## Provenance"):
        assert heading in md
    assert "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb0001" in md


def test_html_is_self_contained(written):
    html = written["html"].read_text()
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert "url(" not in html
    for attr in re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', html):
        assert attr.startswith("#"), attr  # in-page anchors only
    assert "Content-Security-Policy" in html and 'name="viewport"' in html
    for chart in ("chart-price", "chart-hf", "chart-losses"):
        assert f'<figure id="{chart}">' in html
    # The zoom on the liquidations is drawn only when they cluster in a small part of the price path.
    # Each chart is drawn twice, once per screen width (CSS shows one): three charts, six drawings.
    assert html.count("<svg") == 6 and 'id="chart-price-zoom"' not in html
    assert html.count('<div class="chart-wide"><svg') == 3 and html.count('<div class="chart-narrow"><svg') == 3
    assert html.count('<details class="sql">') >= 25


def test_nothing_leaks_the_rpc_key(written, syn):
    for path in written.values():
        assert "SECRETKEY" not in path.read_text()
    assert "eth-mainnet.g.alchemy.com" in written["json"].read_text()  # the host is provenance


def test_a_key_left_in_a_run_record_is_redacted_again(tmp_path):
    """Even if a writer recorded a URL with its key, the report publishes it redacted."""
    import json as _json

    syn = build_warehouse(tmp_path / "w")
    runs = syn.root / "runs.jsonl"
    lines = [_json.loads(x) for x in runs.read_text().splitlines()]
    lines[0]["params"]["rpc_url"] = "https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef"
    runs.write_text("".join(_json.dumps(x) + "\n" for x in lines))
    Warehouse(syn.root).refresh_catalog()
    paths = write_report(syn.root, INCIDENT, tmp_path / "out")
    for path in paths.values():
        text = path.read_text()
        assert "0123456789abcdef0123456789abcdef" not in text
    assert "https://mainnet.infura.io/v3/***" in paths["json"].read_text()


def test_renderers_agree_on_the_headline(syn):
    m = build_model(syn.root, INCIDENT)
    data = json.loads(render_json(m))
    for sentence in data["headline"]:
        assert sentence in render_md(m)
        assert sentence.replace("'", "&#x27;") in render_html(m)


def test_write_report_defaults_and_options(syn, tmp_path, monkeypatch):
    monkeypatch.setattr(postmortem.paths, "DEFAULT_REPORTS", tmp_path / "reports")
    paths = write_report(syn.root, INCIDENT, formats="json,csv")
    assert set(paths) == {"json", "csv"}
    assert paths["json"] == tmp_path / "reports" / INCIDENT / "report.json"
    assert not list((tmp_path / "reports" / INCIDENT).glob("*.tmp")) and not list((tmp_path / "reports" / INCIDENT).glob(".*"))


def test_write_report_refuses_bad_formats_and_the_warehouse_folder(syn, tmp_path):
    with pytest.raises(PostmortemError, match="unknown report format pdf; use any of md,html,json,csv"):
        parse_formats("md,pdf")
    with pytest.raises(PostmortemError, match="no report format given"):
        parse_formats(" , ")
    with pytest.raises(PostmortemError, match="refusing to write the report inside the warehouse"):
        write_report(syn.root, INCIDENT, syn.root / "reports")
    assert parse_formats("HTML, md,html") == ("html", "md")


def test_a_failed_write_keeps_the_previous_report(syn, tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_report(syn.root, INCIDENT, out, formats="json")
    before = (out / "report.json").read_bytes()
    import postmortem.atomic as atomic  # the one atomic writer the reports use

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "fsync", boom)
    with pytest.raises(OSError):
        write_report(syn.root, INCIDENT, out, formats="json")
    assert (out / "report.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
