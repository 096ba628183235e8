"""The `postmortem` command line: a thin layer over each stage's library API.

Each sub-command parses options and calls one library function. Errors a user can fix are
raised as ``PostmortemError`` and printed as one sentence, without a traceback.
"""

from __future__ import annotations

import sys

import click

from postmortem import __version__
from postmortem.errors import PostmortemError


class _Group(click.Group):
    """A click group that turns PostmortemError into one clean line and exit code 2."""

    def invoke(self, ctx):  # noqa: D401
        try:
            return super().invoke(ctx)
        except PostmortemError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="postmortem")
def cli() -> None:
    """Replay historical DeFi lending incidents.

    \b
    Typical flow:
      postmortem devchain start --scenario wsteth-capo-2026-03-10   # local chain (tests, demo)
      postmortem ingest --rpc-url URL --incident ID                 # chain -> warehouse
      postmortem replay --incident ID                               # re-price, judge liquidations
      postmortem report --incident ID                               # Markdown, HTML, JSON, CSV
      postmortem sql "select * from verdicts"                       # query everything
    """


def _register() -> None:
    # Sub-command modules register themselves on `cli`; imported here so that a module's
    # heavy imports (web3, duckdb) load only when the CLI starts.
    import importlib

    for name in ("cli_devchain", "cli_ingest", "cli_replay", "cli_report", "cli_run"):
        try:
            importlib.import_module(f"postmortem.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"postmortem.{name}":
                raise


def main() -> None:
    _register()
    cli(prog_name="postmortem")


if __name__ == "__main__":
    main()
