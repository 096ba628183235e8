"""Every bad value on the command line ends in one sentence with the fix: exit code 2, one
`Error:` line, no traceback, and nothing written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from postmortem.cli import _register, cli


@pytest.fixture(scope="module")
def runner():
    _register()
    return CliRunner()


CASES = [
    (["devchain", "start", "--scenario", "nope"], "unknown scenario"),
    (["devchain", "start", "--scenario", "small", "--borrowers", "5"], "--borrowers applies to the `scale` scenario"),
    (["ingest", "--incident", "nope", "--rpc-url", "http://127.0.0.1:9"], "unknown incident"),
    (["ingest", "--rpc-url", "http://127.0.0.1:9"], "--incident ID or at least one --pool"),
    (["ingest", "--incident", "x", "--pool", "0x" + "1" * 40, "--rpc-url", "http://127.0.0.1:9"], "either --incident or --pool"),
    (["ingest", "--pool", "0x" + "1" * 40, "--from-block", "3", "--to-block", "4", "--rpc-url", "http://127.0.0.1:9"],
     "127.0.0.1"),
    (["ingest", "--from-block", "zero"], "'zero' is not a valid integer"),
    (["sql", "drop table logs"], "read-only"),
    (["sql", "select 1", "--format", "parquet"], "--format parquet needs --output"),
    (["replay", "--incident", "nope"], "unknown incident"),
    (["report", "--incident", "nope"], "no warehouse at"),  # a report reads the warehouse, whatever the catalog holds
    (["run", "--incident", "nope", "--rpc-url", "http://127.0.0.1:9"], "unknown incident"),
    (["verify", "--warehouse", "/nonexistent/warehouse"], "no warehouse"),
]


@pytest.mark.parametrize("args, fragment", CASES, ids=lambda a: " ".join(a)[:50] if isinstance(a, list) else None)
def test_bad_value_is_one_sentence(runner, tmp_path, args, fragment):
    if "--warehouse" not in args and args[0] in ("ingest", "sql", "replay", "report", "run"):
        args = args + ["--warehouse", str(tmp_path / "wh")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert fragment in errors[0], errors[0]
    assert not (tmp_path / "wh").exists() or not any((tmp_path / "wh").rglob("*.parquet"))
