"""Run records: ``runs.jsonl``, one line per ingest, replay or report run."""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from datetime import datetime, timezone

from postmortem import __version__
from postmortem.redact import redact_urls_in, strip_url
from postmortem.warehouse.jsonl import JsonLines, dumps


class RunsMixin:
    """Recording and reading runs (``self._runs`` is set by ``Warehouse``)."""

    _runs: JsonLines
    _state_guard: threading.RLock

    def record_run(self, kind: str, params: dict, summary: dict, *, run_id: str | None = None,
                   started_at: datetime | None = None, finished_at: datetime | None = None) -> dict:
        """Save a summary of one run (ingest, replay, report ...) to ``runs.jsonl`` and return it.

        ``params`` should already have RPC URLs redacted (``postmortem.redact``); every URL
        still in them keeps only its scheme, host and port (``redact.strip_url``). ``summary``
        holds counts and timings. Times are UTC; ``duration_s`` is in seconds.
        """
        finished = finished_at or datetime.now(timezone.utc)
        started = started_at or finished
        rec = {
            "run_id": run_id or f"{finished.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}",
            "kind": kind,
            "tool_version": __version__,
            "started_at": _iso_utc(started),
            "finished_at": _iso_utc(finished),
            "duration_s": round((finished - started).total_seconds(), 3),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "params": redact_urls_in(params, strip_url),
            "summary": summary,
        }
        json.loads(dumps(rec))  # refuse unstorable values before touching the file
        with self._writing(f"record {kind} run"):
            self._runs.append(rec)
        return rec

    def runs(self, kind: str | None = None) -> list[dict]:
        """Recorded runs, oldest first, optionally only those of ``kind``."""
        with self._state_guard:
            records = list(self._runs.load())
        return [r for r in records if kind is None or r.get("kind") == kind]


def _iso_utc(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)  # naive times from callers are taken as UTC
    return dt.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
