"""The README's SQL examples are kept true by running them."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from postmortem.cli import _register, cli

README = Path(__file__).resolve().parent.parent / "README.md"


def _examples() -> list[list[str]]:
    text = README.read_text()
    block = text.split("<!-- sql-examples -->", 1)[1].split("<!-- /sql-examples -->", 1)[0]
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("postmortem sql")]


def test_readme_has_examples():
    assert len(_examples()) >= 4


@pytest.mark.chain
@pytest.mark.parametrize("args", _examples(), ids=lambda a: a[1][:40])
def test_readme_sql_example_runs(args, incident_warehouse):
    _register()
    result = CliRunner().invoke(cli, args + ["--warehouse", str(incident_warehouse["root"])])
    assert result.exit_code == 0, result.output
    assert re.search(r"\(\d+ rows?\)", result.output), result.output
    assert "(0 rows)" not in result.output


def test_every_command_has_help_and_is_documented():
    _register()
    text = README.read_text()
    for name, cmd in cli.commands.items():
        assert cmd.help, f"`postmortem {name}` has no help text"
        assert f"postmortem {name}" in text, f"`postmortem {name}` is not in the README"
