"""The `postmortem` command line: a thin layer over each stage's library API.

Each sub-command parses options and calls one library function. Errors a user can fix are
raised as ``PostmortemError`` and printed as one sentence, without a traceback. Exit codes
(see ``postmortem.errors``): 2 for a usage error, 1 for a runtime failure, 130 after Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import click

from postmortem import __version__
from postmortem.errors import INTERRUPTED_EXIT, INTERRUPTED_MESSAGE, RUNTIME_EXIT, PostmortemError
from postmortem.paths import DEFAULT_WAREHOUSE


def warehouse_option(help_text: str = "Warehouse folder (Parquet files, manifest, catalog.duckdb).", **kw):
    """The one ``--warehouse`` option of every command that reads or writes the warehouse:
    default ``data/warehouse/``, or ``$POSTMORTEM_WAREHOUSE``."""
    return click.option("--warehouse", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_WAREHOUSE,
                        envvar="POSTMORTEM_WAREHOUSE", show_envvar=True, show_default="data/warehouse",
                        help=help_text, **kw)


WAREHOUSE_OPT = warehouse_option()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _Group(click.Group):
    """A click group that turns known failures into one ``Error:`` line and an exit code:
    ``PostmortemError`` (its ``exit_code``: 2 usage, 1 runtime), a JSON-RPC failure (1), a
    file the system refused (1), Ctrl-C (130, "interrupted; re-run the same command to resume")."""

    def invoke(self, ctx):  # noqa: D401
        try:
            return super().invoke(ctx)
        except PostmortemError as exc:
            click.echo(f"Error: {_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo(f"\n{INTERRUPTED_MESSAGE}", err=True)
            sys.exit(INTERRUPTED_EXIT)
        except Exception as exc:  # noqa: BLE001 - only the kinds below; anything else is a bug and keeps its traceback
            message = _runtime_message(exc)
            if message is None:
                raise
            click.echo(f"Error: {message}", err=True)
            sys.exit(RUNTIME_EXIT)


def _runtime_message(exc: Exception) -> str | None:
    rpc = sys.modules.get("postmortem.ingest.rpc")
    if rpc is not None and isinstance(exc, rpc.RpcError):
        return _one_line(exc)  # already redacted; says what failed and why
    if isinstance(exc, OSError) and exc.filename is not None:
        return (f"cannot use {exc.filename}: {exc.strerror or exc}; check that the folder exists and is writable, "
                "or choose another with --warehouse or --out")
    return None


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

    \b
    Environment: POSTMORTEM_RPC_URL (default --rpc-url), POSTMORTEM_WAREHOUSE (default
    --warehouse). Exit codes: 0 done, 2 usage error, 1 runtime failure, 130 interrupted.
    Shell completion: eval "$(_POSTMORTEM_COMPLETE=bash_source postmortem)"
    """


def _register() -> None:
    # Sub-command modules register themselves on `cli`; imported here so that a module's
    # heavy imports (web3, duckdb) load only when the CLI starts.
    import importlib

    for name in ("cli_devchain", "cli_ingest", "cli_replay", "cli_report", "cli_run", "cli_whatif"):
        try:
            importlib.import_module(f"postmortem.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"postmortem.{name}":
                raise


def main() -> None:
    try:
        _register()
        cli(prog_name="postmortem")
    except KeyboardInterrupt:  # before or after a command ran (imports, option parsing)
        click.echo(f"\n{INTERRUPTED_MESSAGE}", err=True)
        _exit_now(INTERRUPTED_EXIT)
    except SystemExit as exc:
        if exc.code == INTERRUPTED_EXIT:
            _exit_now(INTERRUPTED_EXIT)
        raise


def _exit_now(code: int) -> None:
    """Exit without waiting for worker threads still blocked on a request (up to --timeout
    each). Every file is already complete or absent and every lock released: the stages'
    ``finally`` blocks ran while the interrupt travelled up."""
    sys.stdout.flush()
    sys.stderr.flush()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    main()
