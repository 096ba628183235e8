"""Damaged warehouses, concurrent runs and stale locks: never lose or corrupt a row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from conftest import warehouse_rows
from postmortem.ingest.pipeline import ingest
from postmortem.cli import _register, cli
from postmortem.errors import PostmortemError
from postmortem.incidents import devchain_window

pytestmark = pytest.mark.chain


def test_damaged_chunks_are_found_and_only_they_refetched(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    clean, damaged = tmp_path / "clean", tmp_path / "damaged"
    ingest(small_chain.url, incident=inc, warehouse=clean, progress=False, chunk_size=1)
    first = ingest(small_chain.url, incident=inc, warehouse=damaged, progress=False, chunk_size=1)
    files = sorted(damaged.glob("31337/liquidations/*.parquet"))
    truncated = files[0]
    truncated.write_bytes(truncated.read_bytes()[:100])           # a truncated file
    missing = sorted(damaged.glob("31337/blocks/*.parquet"))[-1]
    missing.unlink()                                              # a manifest entry without its file
    changed = sorted(damaged.glob("31337/oracle_prices/*.parquet"))[0]
    raw = bytearray(changed.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    changed.write_bytes(bytes(raw))                               # bytes that no longer match the hash
    _register()
    r = CliRunner().invoke(cli, ["verify", "--warehouse", str(damaged)])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 3 and all(ln.count("\n") == 0 for ln in lines), r.output
    again = ingest(small_chain.url, incident=inc, warehouse=damaged, progress=False, chunk_size=1)
    assert again["damaged_files_repaired"] == 3
    affected = {tuple(p.stem.split("__")[-1].split("_to_")) for p in (truncated, missing, changed)}
    assert again["chunks"] == len(affected) < first["chunks"] + again["chunks_skipped"]
    assert warehouse_rows(clean) == warehouse_rows(damaged)
    r = CliRunner().invoke(cli, ["verify", "--warehouse", str(damaged)])
    assert r.exit_code == 0, r.output


def test_second_writer_is_refused_and_touches_nothing(small_chain, tmp_path):
    inc = devchain_window(small_chain.manifest, "small")
    code = (
        "import json\nfrom postmortem.ingest.pipeline import ingest\nfrom postmortem.incidents import Incident\n"
        f"inc=Incident(**json.loads({json.dumps(inc.__dict__)!r}))\n"
        f"ingest({small_chain.url!r}, incident=inc, warehouse={str(tmp_path)!r}, progress=False, chunk_size=1, "
        "requests_per_second=5)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 30
        lock = tmp_path / ".lock"
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.05)
        manifest = tmp_path / "manifest.jsonl"
        before = manifest.read_bytes() if manifest.exists() else b""
        with pytest.raises(PostmortemError) as exc:
            ingest(small_chain.url, incident=inc, warehouse=tmp_path, progress=False)
        assert str(proc.pid) in str(exc.value) and "\n" not in str(exc.value)
        after = manifest.read_bytes() if manifest.exists() else b""
        assert after.startswith(before)  # only the first writer appended
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_a_dead_process_is_taken_over(small_chain, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / ".lock").write_text(json.dumps({"pid": dead.pid, "host": os.uname().nodename,
                                                "started_at": "2026-01-01T00:00:00Z", "command": "killed ingest"}))
    summary = ingest(small_chain.url, incident=devchain_window(small_chain.manifest, "small"), warehouse=tmp_path, progress=False)
    assert summary["logs"] > 0
