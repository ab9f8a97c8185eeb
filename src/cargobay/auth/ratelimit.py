"""Failed sign-in limiting: a sliding window per key (client address, user name)."""

from __future__ import annotations

import time
from collections import deque


class FailureLimiter:
    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, *keys: str) -> bool:
        """Whether any key has reached the limit of failures in the window."""
        now = time.monotonic()
        return any(
            len(self._recent(key, now)) >= self.limit
            for key in keys
            if key and key in self._failures
        )

    def fail(self, *keys: str) -> None:
        now = time.monotonic()
        if len(self._failures) > 100_000:
            self._failures.clear()
        for key in keys:
            if key:
                self._recent(key, now).append(now)
