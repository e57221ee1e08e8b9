"""Serving metrics in the Prometheus text format, named after vLLM's (`vllm:` becomes `suite:`).

Kept in this process (one web process holds one model cache); thread-safe; no dependencies.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
E2E_BUCKETS = (0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0)

_LOCK = threading.Lock()


class _Histogram:
    def __init__(self, buckets: tuple[float, ...]):
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


_counters: dict[tuple[str, tuple], float] = defaultdict(float)
_histograms: dict[tuple[str, tuple], _Histogram] = {}
_gauges: dict[str, Callable[[], dict[tuple, float]]] = {}

HELP = {
    "suite:time_to_first_token_seconds": ("histogram", "Time to first token in seconds."),
    "suite:inter_token_latency_seconds": ("histogram", "Latency between generated tokens in seconds."),
    "suite:e2e_request_latency_seconds": ("histogram", "End-to-end request latency in seconds."),
    "suite:generation_tokens_total": ("counter", "Number of generated tokens."),
    "suite:prompt_tokens_total": ("counter", "Number of prompt tokens processed."),
    "suite:requests_total": ("counter", "Requests by final HTTP status."),
    "suite:prefix_cache_queries_total": ("counter", "Prompt tokens looked up in conversation KV caches."),
    "suite:prefix_cache_hits_total": ("counter", "Prompt tokens served from conversation KV caches."),
    "suite:spec_decode_num_draft_tokens_total": ("counter", "Draft tokens proposed by speculative decoding."),
    "suite:spec_decode_num_accepted_tokens_total": ("counter", "Draft tokens accepted by the target model."),
    "suite:num_requests_running": ("gauge", "Requests currently generating."),
    "suite:num_requests_waiting": ("gauge", "Requests waiting for a generation slot."),
}


def _labels(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    with _LOCK:
        _counters[(name, _labels(labels))] += amount


def observe(name: str, value: float, buckets: tuple[float, ...], **labels: str) -> None:
    key = (name, _labels(labels))
    with _LOCK:
        histogram = _histograms.get(key)
        if histogram is None:
            histogram = _histograms[key] = _Histogram(buckets)
        histogram.observe(value)


def register_gauge(name: str, read: Callable[[], dict[tuple, float]]) -> None:
    """`read` returns {label tuple: value}, computed at scrape time (e.g. live queue depth)."""
    _gauges[name] = read


def counter_value(name: str, **labels: str) -> float:
    with _LOCK:
        return _counters.get((name, _labels(labels)), 0.0)


def _format_labels(labels: tuple, extra: tuple = ()) -> str:
    items = list(labels) + list(extra)
    if not items:
        return ""
    escaped = (
        f'{key}="{str(value).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in items
    )
    return "{" + ",".join(escaped) + "}"


def render() -> str:
    lines: list[str] = []
    with _LOCK:
        counters = dict(_counters)
        histograms = {key: (h.buckets, list(h.counts), h.total, h.count) for key, h in _histograms.items()}
    gauges = {name: read() for name, read in _gauges.items()}
    for name, (kind, text) in HELP.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        if kind == "counter":
            for (metric, labels), value in sorted(counters.items()):
                if metric == name:
                    lines.append(f"{name}{_format_labels(labels)} {value:g}")
        elif kind == "gauge":
            for labels, value in sorted(gauges.get(name, {}).items()):
                lines.append(f"{name}{_format_labels(labels)} {value:g}")
        else:
            for (metric, labels), (buckets, counts, total, count) in sorted(histograms.items()):
                if metric != name:
                    continue
                cumulative = 0
                for bound, bucket_count in zip(buckets, counts, strict=False):
                    cumulative += bucket_count
                    lines.append(
                        f"{name}_bucket{_format_labels(labels, (('le', f'{bound:g}'),))} {cumulative}"
                    )
                lines.append(f"{name}_bucket{_format_labels(labels, (('le', '+Inf'),))} {count}")
                lines.append(f"{name}_sum{_format_labels(labels)} {total:g}")
                lines.append(f"{name}_count{_format_labels(labels)} {count}")
    return "\n".join(lines) + "\n"
