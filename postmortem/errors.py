"""User-facing errors: one sentence that says what is wrong and how to fix it.

Exit codes of the ``postmortem`` command (the CLI maps exceptions to them in one place,
``postmortem.cli``):

* ``0``: done.
* ``2``: a usage error: something given on the command line (an option value, an incident id,
  a URL, a key, a query, a folder) is wrong; the message says what to change.
  ``PostmortemError`` and click's own usage errors.
* ``1``: a runtime failure: the command was right but something outside it failed (the node
  kept answering 5xx, timed out, kept rate-limiting, answered garbage; a check found damage).
  Re-running later, or with gentler settings, may succeed. ``RuntimeFailure``.
* ``130``: interrupted (Ctrl-C). Everything written so far is kept, so the same command
  resumes; the CLI prints ``INTERRUPTED_MESSAGE``.
"""

from __future__ import annotations

USAGE_EXIT = 2
RUNTIME_EXIT = 1
INTERRUPTED_EXIT = 130
INTERRUPTED_MESSAGE = "interrupted; re-run the same command to resume"


class PostmortemError(Exception):
    """An error the CLI prints as one line (no traceback) and exits with code 2.

    The message should say what went wrong and what to do about it, e.g.
    ``"port 8545 is in use; pass --port with a free port or stop the other node"``.
    """

    exit_code = USAGE_EXIT


class RuntimeFailure(PostmortemError):
    """A failure that is not the user's input (a node that keeps failing, damaged data):
    printed as one line like any ``PostmortemError``, but the exit code is 1."""

    exit_code = RUNTIME_EXIT
