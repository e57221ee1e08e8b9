"""Risk-model features of transactions, computed only from the past (no Django).

``compute_features(table, rows)`` returns one row of ``FEATURE_NAMES`` per screened row. Every
account-history and graph feature of a transaction at time t reads only rows of ``table`` with a
timestamp strictly before t (same-timestamp rows are not "the past": their order within a
timestamp is not meaningful in batch files), so the same transaction gets the same features
whether it is screened in a batch or alone after its history, and training never sees the future.

Groups: transaction (amount, roundness, currency and bank crossing, payment format, hour),
account history (counts and sums in 1/7/30-day windows on both sides, amount vs the account's own
30-day mean, inflow-to-outflow ratio over 2 days, days since last activity, account age, prior
payments on the pair and its reverse) and graph (distinct counterparties so far: in/out degree of
both ends; new counterparties in 7 days: fan-in of the receiver, fan-out of the payer).
"""

from __future__ import annotations

import numpy as np

from .scenarios import DAY
from .table import TxTable, factorize, searchsorted_many

PAYMENT_FORMATS = ("ach", "bitcoin", "cash", "cheque", "credit card", "reinvestment", "wire")

FEATURE_NAMES = (
    "log_amount_usd",
    "round_100",
    "round_1000",
    "cross_currency",
    "cross_bank",
    *(f"format_{f.replace(' ', '_')}" for f in PAYMENT_FORMATS),
    "hour",
    "src_out_count_1d",
    "src_out_count_7d",
    "src_out_count_30d",
    "src_out_log_sum_7d",
    "src_in_count_7d",
    "src_in_log_sum_7d",
    "dst_in_count_7d",
    "dst_in_log_sum_7d",
    "dst_out_count_7d",
    "amount_vs_src_mean_30d",
    "pass_through_ratio_2d",
    "src_days_since_active",
    "src_age_days",
    "dst_age_days",
    "pair_prior_count",
    "reverse_pair_prior_count",
    "src_out_degree",
    "src_in_degree",
    "dst_in_degree",
    "dst_out_degree",
    "src_new_payees_7d",
    "dst_new_payers_7d",
)

# features of the row alone (no history): replay recomputes them from the stored transaction
TRANSACTION_FEATURES = FEATURE_NAMES[: FEATURE_NAMES.index("hour") + 1]

NEVER_DAYS = 1000.0  # "no earlier activity" (a value above any window the model might split on)


def _compress(*cols):
    """Dense integer codes 0..k-1 for several integer/string columns sharing one vocabulary."""
    allv = np.concatenate(cols)
    _, inv = np.unique(allv, return_inverse=True)
    out, o = [], 0
    for c in cols:
        out.append(inv[o : o + len(c)].astype(np.int64))
        o += len(c)
    return out


class _Events:
    """Events sorted by (key, ts) for strict-past window queries."""

    def __init__(self, key, ts, val=None):
        self.span = np.int64(int(ts.max(initial=0)) - int(ts.min(initial=0)) + 2)
        self.t0 = np.int64(ts.min(initial=0))
        ek = key * self.span + (ts - self.t0)
        order = np.argsort(ek, kind="stable")
        self.ek = ek[order]
        # integer cents (or counts): exact sums, so a window's sum does not depend on which other
        # rows (earlier history, later rows, other accounts) happen to be in the table
        units = (
            np.ones(len(key), np.int64) if val is None else np.round(np.asarray(val) * 100).astype(np.int64)
        )
        self.scale = 1.0 if val is None else 100.0
        self.cs = np.concatenate([[0], np.cumsum(units[order])])

    def window(self, q_key, q_ts, window_s, order=None):
        """(count, sum) of events with the same key and ts in [t - window, t). ``order``: the
        queries sorted by (key, ts) (``_query_order``), shared by the calls with the same queries."""
        base = q_key * self.span
        rel = q_ts - self.t0
        ends = base + rel
        # the window's starts ascend with its ends (same key, earlier time): one sort serves both
        order = np.argsort(ends, kind="stable") if order is None else order
        hi = searchsorted_many(self.ek, ends, "left", order)
        lo = searchsorted_many(self.ek, base + np.maximum(rel - window_s, 0), "left", order)
        lo = np.minimum(lo, hi)
        return (hi - lo).astype(np.float64), (self.cs[hi] - self.cs[lo]) / self.scale

    def first_last(self, q_key, q_ts, order=None):
        """(first ts, last ts) of events with the same key strictly before t; NaN when none."""
        base = q_key * self.span
        rel = q_ts - self.t0
        ends = base + rel
        order = np.argsort(ends, kind="stable") if order is None else order
        hi = searchsorted_many(self.ek, ends, "left", order)
        lo = searchsorted_many(self.ek, base, "left", order)
        has = hi > lo
        first = np.full(len(q_key), np.nan)
        last = np.full(len(q_key), np.nan)
        first[has] = self.ek[lo[has]] - base[has] + self.t0
        last[has] = self.ek[hi[has] - 1] - base[has] + self.t0
        return first, last


def _query_order(q_key, q_ts) -> np.ndarray:
    """The queries sorted by (key, ts): the order every ``_Events`` search of them shares (the
    searches need not be in order to be right, only to be fast: ``searchsorted_many``)."""
    t0 = q_ts.min(initial=0)
    return np.argsort(q_key * (np.int64(q_ts.max(initial=0) - t0) + 1) + (q_ts - t0), kind="stable")


def _first_occurrence(key, ts):
    """1.0 for the earliest row (by ts, then table order) of each key, else 0.0."""
    order = np.lexsort((np.arange(len(key)), ts, key))
    k = key[order]
    first = np.ones(len(key), bool)
    first[1:] = k[1:] != k[:-1]
    out = np.zeros(len(key))
    out[order[first]] = 1.0
    return out


def compute_features(table: TxTable, rows=None, *, prior=None) -> np.ndarray:
    """Features (float64, shape (len(rows), len(FEATURE_NAMES))) of ``rows`` of ``table``.

    ``rows``: indices or a boolean mask of the rows to featurise (default: all); every other row
    of ``table`` is history (only the rows strictly earlier in time are read). ``prior``: a
    ``prior.Prior`` summarising history older than ``table`` by more than 30 days (its account
    codes replace the table's own); the features are those of the table with that history in it.
    """
    n = len(table)
    if rows is None:
        q = np.arange(n)
    else:
        rows = np.asarray(rows)
        q = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
    out = np.zeros((len(q), len(FEATURE_NAMES)))
    if not len(q):
        return out
    ts = table.ts
    usd = table.amount_usd
    if prior is None:
        (src, dst), _ = factorize(table.src_account, table.dst_account)
    else:
        src, dst = prior.src, prior.dst
    n_acc = int(max(src.max(), dst.max())) + 1
    pair, rev = _compress(src * n_acc + dst, dst * n_acc + src)
    qs, qd, qt, qa = src[q], dst[q], ts[q], usd[q]
    big = int(ts.max() - ts.min()) + 1
    col = {}

    col["log_amount_usd"] = np.log1p(qa)
    paid = table.amount_paid[q]
    col["round_100"] = (np.mod(paid, 100) == 0).astype(float)
    col["round_1000"] = (np.mod(paid, 1000) == 0).astype(float)
    col["cross_currency"] = (
        np.char.upper(table.currency_paid[q]) != np.char.upper(table.currency_received[q])
    ).astype(float)
    col["cross_bank"] = (table.src_bank[q] != table.dst_bank[q]).astype(float)
    fmt = np.char.lower(table.payment_format[q])
    for f in PAYMENT_FORMATS:
        col[f"format_{f.replace(' ', '_')}"] = (fmt == f).astype(float)
    col["hour"] = ((qt % DAY) // 3600).astype(float)

    out_ev = _Events(src, ts, usd)  # payments made, keyed by payer
    in_ev = _Events(dst, ts, usd)  # payments received, keyed by payee
    by_s, by_d = _query_order(qs, qt), _query_order(qd, qt)  # each sort serves every search below
    c1, _ = out_ev.window(qs, qt, DAY, by_s)
    c7, s7 = out_ev.window(qs, qt, 7 * DAY, by_s)
    c30, s30 = out_ev.window(qs, qt, 30 * DAY, by_s)
    col["src_out_count_1d"], col["src_out_count_7d"], col["src_out_count_30d"] = c1, c7, c30
    col["src_out_log_sum_7d"] = np.log1p(s7)
    ci, si = in_ev.window(qs, qt, 7 * DAY, by_s)
    col["src_in_count_7d"], col["src_in_log_sum_7d"] = ci, np.log1p(si)
    cd, sd = in_ev.window(qd, qt, 7 * DAY, by_d)
    col["dst_in_count_7d"], col["dst_in_log_sum_7d"] = cd, np.log1p(sd)
    col["dst_out_count_7d"], _ = out_ev.window(qd, qt, 7 * DAY, by_d)
    mean30 = np.divide(s30, c30, out=np.zeros(len(q)), where=c30 > 0)
    col["amount_vs_src_mean_30d"] = np.divide(qa, mean30, out=np.zeros(len(q)), where=mean30 > 0)
    _, in2 = in_ev.window(qs, qt, 2 * DAY, by_s)
    col["pass_through_ratio_2d"] = np.minimum(np.divide(qa, in2, out=np.zeros(len(q)), where=in2 > 0), 10.0)

    both = _Events(np.concatenate([src, dst]), np.concatenate([ts, ts]))
    first_s, last_s = both.first_last(qs, qt, by_s)
    first_d, _ = both.first_last(qd, qt, by_d)
    if prior is not None:  # older rows: earlier than any in the table
        old_first_s, old_first_d = prior.first[qs], prior.first[qd]
        first_s = np.where(np.isnan(old_first_s), first_s, old_first_s)
        first_d = np.where(np.isnan(old_first_d), first_d, old_first_d)
        last_s = np.where(np.isnan(last_s), prior.last[qs], last_s)
    col["src_days_since_active"] = np.where(np.isnan(last_s), NEVER_DAYS, (qt - last_s) / DAY)
    col["src_age_days"] = np.where(np.isnan(first_s), 0.0, (qt - first_s) / DAY)
    col["dst_age_days"] = np.where(np.isnan(first_d), 0.0, (qt - first_d) / DAY)

    pair_ev = _Events(pair, ts)
    col["pair_prior_count"], _ = pair_ev.window(pair[q], qt, big)
    col["reverse_pair_prior_count"], _ = pair_ev.window(rev[q], qt, big)

    new_pair = _first_occurrence(pair, ts)
    if prior is not None:
        col["pair_prior_count"] = col["pair_prior_count"] + prior.pair_count(qs, qd)
        col["reverse_pair_prior_count"] = col["reverse_pair_prior_count"] + prior.pair_count(qd, qs)
        new_pair[prior.pair_count(src, dst) > 0] = 0.0  # a counterparty already seen earlier
    new_out = _Events(src, ts, new_pair)
    new_in = _Events(dst, ts, new_pair)
    _, col["src_out_degree"] = new_out.window(qs, qt, big, by_s)
    _, col["src_in_degree"] = new_in.window(qs, qt, big, by_s)
    _, col["dst_in_degree"] = new_in.window(qd, qt, big, by_d)
    _, col["dst_out_degree"] = new_out.window(qd, qt, big, by_d)
    if prior is not None:
        col["src_out_degree"] = col["src_out_degree"] + prior.out_degree[qs]
        col["src_in_degree"] = col["src_in_degree"] + prior.in_degree[qs]
        col["dst_in_degree"] = col["dst_in_degree"] + prior.in_degree[qd]
        col["dst_out_degree"] = col["dst_out_degree"] + prior.out_degree[qd]
    # new counterparties within 7 days: pairs whose first payment fell in the window
    _, col["src_new_payees_7d"] = new_out.window(qs, qt, 7 * DAY, by_s)
    _, col["dst_new_payers_7d"] = new_in.window(qd, qt, 7 * DAY, by_d)

    for j, name in enumerate(FEATURE_NAMES):
        out[:, j] = col[name]
    return out
