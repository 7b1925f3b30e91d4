"""The progress line of ``hypemu sweep`` on a terminal: points done of the total, the rate and the
time left. Nothing at all when the output is not a terminal (a log, a pipe, CI)."""

from __future__ import annotations

import time
from typing import Optional, TextIO

WIDTH = 30
EVERY = 0.2   # seconds between redraws


class Progress:
    def __init__(self, total: int, done: int, stream: TextIO) -> None:
        self.total, self.done, self.stream = total, done, stream
        self.enabled = stream.isatty() and total > done
        self._start = time.monotonic()
        self._first = done
        self._drawn = 0.0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and (now - self._drawn >= EVERY or self.done >= self.total):
            self._drawn = now
            self.stream.write("\r" + self.line(now) + "\x1b[K")
            self.stream.flush()

    def line(self, now: Optional[float] = None) -> str:
        elapsed = (now if now is not None else time.monotonic()) - self._start
        fresh = self.done - self._first
        rate = fresh / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        filled = WIDTH * self.done // max(self.total, 1)
        eta = "--" if left is None else _clock(left)
        return (f"[{'#' * filled}{'.' * (WIDTH - filled)}] {self.done}/{self.total} "
                f"{100 * self.done // max(self.total, 1)}%  {rate:,.0f} points/s  ETA {eta}")

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _clock(seconds: float) -> str:
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
