"""User-facing errors: one sentence that says what is wrong and how to fix it."""

from __future__ import annotations


class PostmortemError(Exception):
    """An error the CLI prints as one line (no traceback) and exits with code 2.

    The message should say what went wrong and what to do about it, e.g.
    ``"port 8545 is in use; pass --port with a free port or stop the other node"``.
    """

    exit_code = 2
