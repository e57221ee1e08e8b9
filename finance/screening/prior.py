"""History older than every screening window, summarised per account and per pair (no Django).

Screening asks the history two kinds of question: windows (the scenarios' and the features'
counts and sums over at most ``reach`` seconds before a row) and questions over the whole
look-back (an account's first and last movement on either side, its distinct counterparties,
prior payments on a pair). Rows older than every window only ever answer the
second kind, and a few per-account and per-pair aggregates answer it exactly. So ``screen`` cuts
its history at (first row of the batch - ``reach``): the recent part goes through the vectorised
windows as before, the older part is summarised here once per call with integer operations. A
batch's cost then depends on the rows in its windows, not on the size of the book behind it, and
every value (features, rule numbers, decisions) is identical to screening against the whole
history (``tests/finance/test_prior_history.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .scenarios import DAY, SCENARIOS
from .table import factorize

FEATURE_REACH_S = 30 * DAY  # the longest window of the model's features (features.py)


def screening_reach(params_by_code: dict[str, dict], *, with_model: bool) -> int:
    """Seconds before a row that any window of the active scenarios (and the model's features)
    can read. FAN_IN/FAN_OUT read twice their window: whether a payment in the window was to a
    new counterparty depends on the pair's previous payment up to a window earlier. DORMANT reads
    an account's last movement at any age: the summary answers it. One day of margin."""
    reach = FEATURE_REACH_S if with_model else 0
    for code, params in params_by_code.items():
        p = {**SCENARIOS[code].default_params, **params} if code in SCENARIOS else dict(params)
        window = int(p.get("window_s", 0) or 0)
        if code in ("FAN_IN", "FAN_OUT"):
            window *= 2
        if code == "VELOCITY":
            window = max(window, int(p.get("history_s", 0) or 0))
        reach = max(reach, window)
    return reach + DAY


@dataclass
class Prior:
    """The summary of the older rows, indexed by the account codes of the screened table.

    ``src`` / ``dst``: codes of the table's rows (the engine uses them instead of its own);
    per code: ``first`` / ``last`` movement on either side as float seconds (NaN: none), ``out_degree`` / ``in_degree`` (distinct counterparties);
    ``pair_keys`` (sorted ``payer * size + payee``) with ``pair_counts``."""

    src: np.ndarray
    dst: np.ndarray
    size: int
    first: np.ndarray
    last: np.ndarray
    out_degree: np.ndarray
    in_degree: np.ndarray
    pair_keys: np.ndarray
    pair_counts: np.ndarray

    @classmethod
    def build(cls, old_src, old_dst, old_ts, table_src, table_dst) -> Prior:
        (src, dst, osrc, odst), size = factorize(table_src, table_dst, old_src, old_dst)
        old_ts = np.asarray(old_ts, dtype=np.int64)
        big = np.iinfo(np.int64).max
        first = np.full(size, big, np.int64)
        last = np.full(size, -big, np.int64)
        either, either_ts = np.concatenate([osrc, odst]), np.concatenate([old_ts, old_ts])
        np.minimum.at(first, either, either_ts)
        np.maximum.at(last, either, either_ts)
        keys, counts = np.unique(osrc * size + odst, return_counts=True)
        return cls(
            src=src,
            dst=dst,
            size=size,
            first=np.where(first == big, np.nan, first.astype(np.float64)),
            last=np.where(last == -big, np.nan, last.astype(np.float64)),
            out_degree=np.bincount(keys // size, minlength=size).astype(np.float64),
            in_degree=np.bincount(keys % size, minlength=size).astype(np.float64),
            pair_keys=keys,
            pair_counts=counts.astype(np.float64),
        )

    def pair_count(self, payer: np.ndarray, payee: np.ndarray) -> np.ndarray:
        """Older payments from ``payer`` to ``payee`` (codes), per element."""
        if not len(self.pair_keys):
            return np.zeros(len(payer))
        keys = payer * self.size + payee
        at = np.minimum(np.searchsorted(self.pair_keys, keys), len(self.pair_keys) - 1)
        return np.where(self.pair_keys[at] == keys, self.pair_counts[at], 0.0)
