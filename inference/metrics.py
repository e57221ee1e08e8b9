"""Serving metrics for Prometheus, named after vLLM's (`vllm:` becomes `suite:`).

`prometheus_client` in multiprocess mode: every process (each gunicorn worker, each Celery worker
child, the test process) writes its samples to memory-mapped files in PROMETHEUS_MULTIPROC_DIR
(settings; var/metrics by default, under the per-run temporary directory in tests), and one scrape of
/metrics, whichever process answers it, adds them all up. `run_suite` wipes the folder at start:
the files of an earlier run would otherwise be counted again.

Counters and histograms from processes that have exited stay in the sum (counters never go back).
The queue gauges are per live process (`livesum`): each serving process refreshes its own values
every second, and a gunicorn worker's are dropped when it exits (serve_web's child_exit hook).

The call sites use the small API below (inc / observe / register_gauge), so the exposition library
is one module's business.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings


def _multiprocess_dir() -> str | None:
    """Where the samples go: the setting, exported for this process and its children."""
    folder = getattr(settings, "PROMETHEUS_MULTIPROC_DIR", None) or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
    return str(folder)


MULTIPROCESS_DIR = _multiprocess_dir()

# The value class is chosen when prometheus_client is first imported; choose again in case some
# library imported it before the folder was exported above.
from prometheus_client import values as _values  # noqa: E402

_values.ValueClass = _values.get_value_class()

from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# The metric objects live in a registry of their own; in multiprocess mode they only write their
# files, and render() collects from the files of every process.
_OWN = CollectorRegistry(auto_describe=True)
_LABELS = ("model_name",)


def _counter(name: str, documentation: str, labels=_LABELS) -> Counter:
    # prometheus_client adds the `_total` suffix itself.
    return Counter(name.removesuffix("_total"), documentation, labels, registry=_OWN)


def _histogram(name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
    return Histogram(name, documentation, _LABELS, buckets=buckets, registry=_OWN)


def _gauge(name: str, documentation: str) -> Gauge:
    return Gauge(name, documentation, _LABELS, registry=_OWN, multiprocess_mode="livesum")


COUNTERS: dict[str, Counter] = {
    "suite:generation_tokens_total": _counter("suite:generation_tokens_total", "Number of generated tokens."),
    "suite:prompt_tokens_total": _counter("suite:prompt_tokens_total", "Number of prompt tokens processed."),
    "suite:requests_total": _counter(
        "suite:requests_total",
        "Generation requests by outcome (succeeded, failed).",
        ("model_name", "outcome"),
    ),
    "suite:prefix_cache_queries_total": _counter(
        "suite:prefix_cache_queries_total", "Prompt tokens looked up in conversation KV caches."
    ),
    "suite:prefix_cache_hits_total": _counter(
        "suite:prefix_cache_hits_total", "Prompt tokens served from conversation KV caches."
    ),
    "suite:spec_decode_num_draft_tokens_total": _counter(
        "suite:spec_decode_num_draft_tokens_total", "Draft tokens proposed by speculative decoding."
    ),
    "suite:spec_decode_num_accepted_tokens_total": _counter(
        "suite:spec_decode_num_accepted_tokens_total", "Draft tokens accepted by the target model."
    ),
}
HISTOGRAMS: dict[str, Histogram] = {
    "suite:time_to_first_token_seconds": _histogram(
        "suite:time_to_first_token_seconds", "Time to first token in seconds.", TTFT_BUCKETS
    ),
    "suite:inter_token_latency_seconds": _histogram(
        "suite:inter_token_latency_seconds", "Latency between generated tokens in seconds.", ITL_BUCKETS
    ),
    "suite:e2e_request_latency_seconds": _histogram(
        "suite:e2e_request_latency_seconds", "End-to-end request latency in seconds.", E2E_BUCKETS
    ),
}
GAUGES: dict[str, Gauge] = {
    "suite:num_requests_running": _gauge("suite:num_requests_running", "Requests currently generating."),
    "suite:num_requests_waiting": _gauge(
        "suite:num_requests_waiting", "Requests waiting for a generation slot."
    ),
}


# Each labelled series once looked up: prometheus_client's labels() validates the names and takes
# a lock on every call (twice the cost of the sample's own write, and a completion writes ~25).
# The key is the call's (name, labels); series are per model and outcome, so the dict stays small.
# A series object stays valid across fork: its value checks the process id on every write.
_series: dict[tuple, Counter | Histogram] = {}


def _one(metrics: dict, name: str, labels: dict[str, str]):
    key = (name, *labels.items())
    series = _series.get(key)
    if series is None:
        series = _series[key] = metrics[name].labels(**labels)
    return series


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    _one(COUNTERS, name, labels).inc(amount)


def observe(name: str, value: float, buckets: tuple[float, ...] | None = None, **labels: str) -> None:
    """`buckets` is fixed per histogram (above); the argument is accepted for the callers' readability."""
    _one(HISTOGRAMS, name, labels).observe(value)


def histogram(name: str, **labels: str):
    """One labelled series of a histogram, for a caller observing it many times (per token)."""
    return _one(HISTOGRAMS, name, labels)


# --- gauges: read from this process's state, written to its own file --------------------------
_gauge_readers: dict[str, Callable[[], dict[tuple, float]]] = {}
_gauge_seen: dict[str, set[tuple]] = {}
_refresher_lock = threading.Lock()
_refresher: threading.Thread | None = None
REFRESH_SECONDS = 1.0


def register_gauge(name: str, read: Callable[[], dict[tuple, float]]) -> None:
    """`read` returns {label tuple: value} from this process's state (e.g. its admission queues)."""
    if name not in GAUGES:
        raise KeyError(f"{name} is not one of the suite's gauges: {', '.join(GAUGES)}")
    _gauge_readers[name] = read


def refresh_gauges() -> None:
    """Write this process's current gauge values; labels that disappeared go back to 0."""
    for name, read in list(_gauge_readers.items()):
        current = read()
        for labels in _gauge_seen.get(name, set()) - set(current):
            GAUGES[name].labels(**dict(labels)).set(0)
        for labels, value in current.items():
            GAUGES[name].labels(**dict(labels)).set(value)
        _gauge_seen[name] = set(current)


def start_gauge_refresher() -> None:
    """Keep this process's gauges current (a daemon thread; idempotent; per process, fork-safe)."""
    global _refresher
    with _refresher_lock:
        if _refresher is not None and _refresher.is_alive():
            return

        def loop() -> None:
            while True:
                refresh_gauges()
                time.sleep(REFRESH_SECONDS)

        _refresher = threading.Thread(target=loop, name="suite-metrics-gauges", daemon=True)
        _refresher.start()


# --- exposition -------------------------------------------------------------------------------
def render() -> bytes:
    """The Prometheus text exposition of every process's samples (this process's alone when no
    multiprocess folder is configured)."""
    refresh_gauges()
    if not MULTIPROCESS_DIR:
        return generate_latest(_OWN)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROCESS_DIR)
    return generate_latest(registry)
