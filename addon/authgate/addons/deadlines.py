"""Deadlines by key, served by one event-loop timer (no mitmproxy import).

Forward gives each forwarded request upstream.timeout seconds for the upstream's
response headers. A timer per request (asyncio's call_later, then cancel) costs
a TimerHandle, a push on the loop's heap and a cancellation for every request;
here a request costs a dict entry, and one timer is armed for the earliest
deadline only. A deadline that is dropped (the answer came) leaves the timer as
it is: when it fires it finds nothing due and is armed again for the earliest
deadline left, if any. With one timeout for all, a new deadline is never the
earliest, so a request never touches the timer; it fires about once per
timeout while requests come, and never when none are waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Callable, Hashable

log = logging.getLogger("authgate")


class Deadlines:
    def __init__(self, expire: Callable[..., None]) -> None:
        self._expire = expire  # expire(*args) for each deadline that passes
        self._due: dict[Hashable, tuple[float, tuple]] = {}  # key -> (loop time, args)
        self._timer: asyncio.TimerHandle | None = None
        self._at = math.inf  # when the timer fires

    def set(self, key: Hashable, seconds: float, *args) -> None:
        """expire(*args) in `seconds`, unless the key is dropped (or set again) before."""
        loop = asyncio.get_running_loop()
        at = loop.time() + seconds
        self._due[key] = (at, args)
        if at < self._at:
            self._arm(loop, at)

    def drop(self, key: Hashable) -> None:
        self._due.pop(key, None)

    def when(self, key: Hashable) -> float | None:
        """The key's deadline in the loop's time (loop.time()); None when it has none."""
        entry = self._due.get(key)
        return entry[0] if entry else None

    def __contains__(self, key: Hashable) -> bool:
        return key in self._due

    def __len__(self) -> int:
        return len(self._due)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._at = None, math.inf
        self._due.clear()

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._at = at
        self._timer = loop.call_at(at, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._at = None, math.inf
        now = loop.time()
        passed = [(key, args) for key, (at, args) in self._due.items() if at <= now]
        for key, args in passed:
            del self._due[key]
        for key, args in passed:
            try:
                self._expire(*args)
            except Exception:  # one deadline's failure is not every other's
                log.exception(f"auth gate: a deadline's action failed ({key})")
        if self._due:
            earliest = min(at for at, _ in self._due.values())
            if earliest < self._at:
                self._arm(loop, earliest)
