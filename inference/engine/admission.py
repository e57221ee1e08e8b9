"""Admission control: a bounded number of generations per model at once, a bounded queue behind them.

When the queue is full the caller gets `Overloaded(retry_after_s)` at once (the API answers 429
with Retry-After) instead of piling up threads. A slot is released exactly once: on normal end,
on error, or when a streaming client disconnects and the response is closed.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from inference.engine.types import Overloaded

T = TypeVar("T")


class Slot:
    def __init__(self, controller: AdmissionController):
        self._controller = controller
        self._released = False
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._controller._release(time.monotonic() - self._started)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class AdmissionController:
    def __init__(self, max_concurrent: int = 1, max_queue: int = 16, *, queue_timeout_s: float = 300.0):
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1.")
        if max_queue < 0:
            raise ValueError("max_queue must not be negative.")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.queue_timeout_s = queue_timeout_s
        self._condition = threading.Condition()
        self._running = 0
        self._waiting: deque[object] = deque()
        # Recent generation durations, to tell a refused client when to come back.
        self._recent_s: deque[float] = deque(maxlen=20)

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def retry_after_s(self) -> float:
        typical = sum(self._recent_s) / len(self._recent_s) if self._recent_s else 2.0
        return max(1.0, typical * (1 + len(self._waiting)) / self.max_concurrent)

    def acquire(self, timeout_s: float | None = None) -> Slot:
        """Wait (first come, first served) for a slot; Overloaded when the queue is full or the wait too long."""
        deadline = time.monotonic() + (self.queue_timeout_s if timeout_s is None else timeout_s)
        ticket = object()
        with self._condition:
            if self._running < self.max_concurrent and not self._waiting:
                return self._grant()
            if len(self._waiting) >= self.max_queue:
                raise Overloaded(self.retry_after_s())
            self._waiting.append(ticket)
            try:
                while not (self._waiting[0] is ticket and self._running < self.max_concurrent):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise Overloaded(self.retry_after_s(), "Timed out waiting for a free model slot.")
                    self._condition.wait(remaining)
                self._waiting.popleft()
                return self._grant()
            finally:
                if ticket in self._waiting:
                    self._waiting.remove(ticket)
                    self._condition.notify_all()

    def _grant(self) -> Slot:
        self._running += 1
        return Slot(self)

    def _release(self, held_s: float) -> None:
        with self._condition:
            self._running -= 1
            self._recent_s.append(held_s)
            self._condition.notify_all()

    def stream(self, start: Callable[[], Iterator[T]], timeout_s: float | None = None) -> Iterator[T]:
        """Run a streaming generation inside a slot taken before its first item.

        The slot is released when the stream ends, fails, or is closed by a client that went away
        (closing the generator runs the `with` block's exit).
        """
        with self.acquire(timeout_s):
            yield from start()

    def stats(self) -> AdmissionStats:
        with self._condition:
            return AdmissionStats(
                running=self._running,
                waiting=len(self._waiting),
                max_concurrent=self.max_concurrent,
                max_queue=self.max_queue,
                retry_after_s=self.retry_after_s(),
            )


@dataclass(frozen=True)
class AdmissionStats:
    running: int
    waiting: int
    max_concurrent: int
    max_queue: int
    retry_after_s: float
