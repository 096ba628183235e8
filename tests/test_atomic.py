"""The one atomic file writer: a reader or a failure sees the old file or the new one, never half."""

from __future__ import annotations

import os
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from postmortem import atomic


def test_write_text_replaces_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("old")
    atomic.write_text(target, "new\r\nline two\n")  # line endings exactly as given
    assert target.read_bytes() == b"new\r\nline two\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md"]


def test_a_failing_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "out.parquet"
    target.write_bytes(b"the old result")
    with pytest.raises(ValueError, match="half way"):
        with atomic.replacing(target) as tmp:
            tmp.write_bytes(b"half a ")
            raise ValueError("failed half way")
    assert target.read_bytes() == b"the old result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


def test_the_block_can_read_back_what_it_wrote_before_the_rename(tmp_path):
    target = tmp_path / "t.parquet"
    with atomic.replacing(target) as tmp:
        pq.write_table(pa.table({"x": [1, 2, 3]}), tmp)
        assert not target.exists() and pq.ParquetFile(tmp).metadata.num_rows == 3
    assert pq.read_table(target).column("x").to_pylist() == [1, 2, 3]
    assert not atomic.temp_path(target).exists()


def test_temporary_names_are_hidden_per_process_and_can_be_fixed(tmp_path):
    target = tmp_path / "report.md"
    # The reports stage removes exactly this shape of leftover (`.report.md.<pid>.tmp`).
    assert atomic.temp_path(target) == tmp_path / f".report.md.{os.getpid()}.tmp"
    fixed = tmp_path / "report.md.building"
    fixed.write_bytes(b"left by a killed run")
    atomic.write_bytes(target, b"done", tmp=fixed)
    assert target.read_bytes() == b"done" and not fixed.exists()


def test_a_reader_only_ever_sees_a_whole_file(tmp_path):
    target = tmp_path / "manifest.json"
    versions = [bytes([65 + i]) * 200_000 for i in range(6)]
    atomic.write_bytes(target, versions[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.add(target.read_bytes())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(20):
            for v in versions:
                atomic.write_bytes(target, v)
    finally:
        stop.set()
        reader.join()
    assert seen and seen <= set(versions)
