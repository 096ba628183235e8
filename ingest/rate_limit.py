"""A requests-per-second limit shared by every thread of a JSON-RPC client.

Hosted providers meter the key, not the connection, so one bucket serves all threads, a batch
spends one token per call inside it, and a rate-limit answer pauses everyone (``pause``).
"""

from __future__ import annotations

import threading
import time
from typing import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """A thread-safe token bucket: at most ``rate`` tokens per second on average, bursts of
    up to ``burst`` tokens (default: one second's worth, at least 1).

    A request larger than the burst is let through when the bucket is full and leaves it in
    debt, so the long-run rate still holds. ``pause(seconds)`` stops everybody until then
    (used when the node says "rate limited"). ``rate=None`` means no limit, but pauses still
    apply. ``clock`` and ``sleep`` are injectable for tests (seconds).
    """

    def __init__(
        self,
        rate: float | None,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("requests_per_second must be positive (or None for no limit)")
        self.rate = rate
        self.burst = max(1.0, float(burst if burst is not None else (rate or 1.0)))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._last = clock()
        self._pause_until = float("-inf")
        self.waited_seconds = 0.0

    def pause(self, seconds: float) -> None:
        """Hold every ``acquire`` until ``seconds`` from now (extends, never shortens, a pause)."""
        with self._lock:
            self._pause_until = max(self._pause_until, self._clock() + max(0.0, seconds))

    def acquire(self, tokens: float = 1.0) -> float:
        """Block until ``tokens`` may be spent; returns the seconds waited."""
        need = min(float(tokens), self.burst)
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                if now < self._pause_until:
                    wait = self._pause_until - now
                elif self.rate is None:
                    break
                else:
                    self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                    if self._tokens >= need:
                        self._tokens -= tokens  # may go negative: debt that later callers wait out
                        break
                    wait = (need - self._tokens) / self.rate
            wait = max(wait, 1e-4)
            self._sleep(wait)
            waited += wait
        if waited:
            with self._lock:
                self.waited_seconds += waited
        return waited

