"""Chunks of an import screened by two processes while the first one persists (no Django here).

``ChunkScreener`` forks a screening process once everything screening reads (the batch or stream
of batches, the stored history, the configuration, the party names) is in memory. Both processes
then take chunks in order from one shared counter: the forked one screens and sends each chunk it
takes; the calling process persists the chunks in order and, whenever the next one to persist is
not ready, takes and screens the next untaken chunk itself instead of waiting. So the two cores
share the screening and the persistence by how long each takes here (SQLite, PostgreSQL, the
load), and no chunk is screened twice. Screening reads only memory, never the database: the
forked process never touches the parent's connection and leaves by ``os._exit`` (multiprocessing's
own exit for a forked child). A failure in it is raised in the caller with its traceback; a
process that died (killed, out of memory) is an error too: the caller's transaction then rolls
the batch back.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from finance.screening.engine import DECISIONS as DECISION_CODES


@dataclass
class ScreenedChunk:
    """A chunk's screening as persistence needs it: per row (chunk order) decision and risk, the
    evidence of the rows that alert, and the whitelisted name matches screening dropped. Compact,
    so that a screening process sends it cheaply (arrays, not one object per row)."""

    decision: list[str]
    risk: list[float]
    evidence: dict[int, dict]  # row in the chunk -> evidence (rows with a decision other than approve)
    dropped: dict[str, list[dict]] = field(default_factory=dict)  # party name hash -> whitelisted matches

    codes: np.ndarray | None = field(default=None, repr=False, compare=False)  # int8 decision codes

    @classmethod
    def of(cls, screened, names) -> ScreenedChunk:
        """From the engine's columns (``engine.Screened``: its codes index ``DECISION_CODES``)."""
        return cls(
            decision=np.array(DECISION_CODES)[screened.decision].tolist(),
            risk=screened.risk.tolist(),
            evidence=screened.evidence,
            dropped=names.dropped if names is not None else {},
            codes=screened.decision,
        )

    def packed(self) -> tuple:
        code = {decision: k for k, decision in enumerate(DECISION_CODES)}
        return (
            self.codes
            if self.codes is not None
            else np.fromiter((code[d] for d in self.decision), np.int8, len(self.decision)),
            np.array(self.risk, dtype=np.float64),
            self.evidence,
            self.dropped,
        )

    @classmethod
    def unpacked(cls, packed: tuple) -> ScreenedChunk:
        codes, risk, evidence, dropped = packed
        return cls(np.array(DECISION_CODES)[codes].tolist(), risk.tolist(), evidence, dropped, codes)


class ScreeningProcessFailed(RuntimeError):
    """The screening process of a batch failed or died: the batch is rolled back."""


class ChunkScreener:
    """Chunks ``bounds`` screened by a forked process and by the caller, each taken once, in order.

    ``get(k)`` returns chunk k's screening: received from the forked process, or screened here. While
    chunk k is not ready, the caller screens the next chunk nobody took yet (``here=False``: it
    only waits). Results the forked process sends are read by a thread as they come, so it never
    waits for the caller to finish its own chunk before it goes on to the next."""

    def __init__(
        self, screen_chunk: Callable[[int, int], ScreenedChunk], bounds: list[tuple[int, int]], *, here=True
    ):
        context = multiprocessing.get_context("fork")
        self._bounds = list(bounds)
        self._screen_chunk = screen_chunk
        self._here = here
        self._taken = context.Value("q", 0)  # the next chunk nobody has taken
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_screen_chunks,
            args=(send, screen_chunk, self._bounds, self._taken),
            name="finance-screening",
            daemon=True,
        )
        self._process.start()
        send.close()
        self._ready: dict[int, ScreenedChunk | tuple] = {}
        self._failure: str | None = None
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="finance-screening-reader", daemon=True)
        self._reader.start()
        self.screened_here = 0  # chunks this process screened itself (for the record)

    def _read(self) -> None:
        while True:
            try:
                status, index, payload = self._receive.recv()
            except (EOFError, OSError):
                with self._changed:
                    self._ended = True
                    self._changed.notify_all()
                return
            with self._changed:
                if status == "ok":
                    self._ready[index] = payload
                else:
                    self._failure = payload
                self._changed.notify_all()

    def _take(self) -> int | None:
        with self._taken.get_lock():
            k = self._taken.value
            if k >= len(self._bounds):
                return None
            self._taken.value = k + 1
            return k

    def get(self, k: int) -> ScreenedChunk:
        while True:
            with self._changed:
                if self._failure is not None:
                    raise ScreeningProcessFailed(
                        f"screening failed in the screening process:\n{self._failure}"
                    )
                if k in self._ready:
                    found = self._ready.pop(k)
                    return found if isinstance(found, ScreenedChunk) else ScreenedChunk.unpacked(found)
            mine = self._take() if self._here else None
            if mine is not None:  # not ready: screen the next untaken chunk here rather than wait
                screened = self._screen_chunk(*self._bounds[mine])
                self.screened_here += 1
                with self._changed:
                    self._ready[mine] = screened
                continue
            with self._changed:
                if k in self._ready or self._failure is not None:
                    continue
                if self._ended:
                    self._process.join(timeout=5)
                    raise ScreeningProcessFailed(
                        f"the screening process ended without a result (exit code {self._process.exitcode})"
                    )
                self._changed.wait(timeout=1.0)

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=30)
        self._reader.join(timeout=5)  # the process's end closed the pipe: the reader saw its end
        self._receive.close()


def _screen_chunks(send, screen_chunk, bounds, taken) -> None:
    """The screening process: takes the next untaken chunk, screens and sends it, until none is left."""
    try:
        while True:
            with taken.get_lock():
                k = taken.value
                if k >= len(bounds):
                    break
                taken.value = k + 1
            send.send(("ok", k, screen_chunk(*bounds[k]).packed()))
    except BaseException:  # everything goes back to the parent, which raises it
        with contextlib.suppress(OSError):  # the parent stopped listening: nothing to tell
            send.send(("error", -1, traceback.format_exc()))
    finally:
        send.close()
