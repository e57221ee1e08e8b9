"""AML rule scenarios, vectorised with numpy over a time-sorted TxTable.

Rows earlier in the table are history; only rows in ``screen_mask`` can raise hits. The same code
scores a single new transaction (table = recent history + new row, mask = new row only).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .table import TxTable, factorize, searchsorted_many

DAY = 86400
SMALL_CYCLE_QUERIES = 64


@dataclass(frozen=True)
class Scenario:
    code: str
    title: str
    default_params: dict
    source: str


@dataclass
class ScenarioHit:
    """One scenario hit on ``row`` (index into the table) with the evidence that explains it."""

    row: int
    code: str
    params: dict
    evidence: dict = field(default_factory=dict)


SCENARIOS = {
    s.code: s
    for s in [
        Scenario(
            "STRUCTURING",
            "Structuring: several payments just below the reporting threshold in a window",
            {"threshold_usd": 10000.0, "band": 0.15, "window_s": 3 * DAY, "min_count": 3},
            "31 CFR 1010.311 (CTR above 10,000 USD) and 31 CFR 1010.314 (structuring)",
        ),
        Scenario(
            "LARGE_CASH",
            "Large cash transaction at or above the cash threshold",
            {"threshold_usd": 10000.0, "formats": ["cash"]},
            "31 CFR 1010.311 CTR 10,000 USD; EU AMLR (Reg. 2024/1624) art. 80 cash limit 10,000 EUR",
        ),
        Scenario(
            "ROUND_AMOUNT",
            "Large round amount",
            {"min_usd": 5000.0, "multiple": 1000.0},
            "FATF, Money Laundering Using Trade/Cash indicators (round-figure transfers)",
        ),
        Scenario(
            "PASS_THROUGH",
            "Rapid pass-through: funds received and sent on within a short window",
            {"window_s": 2 * DAY, "min_usd": 1000.0, "ratio_low": 0.8, "ratio_high": 1.1},
            "FATF Guidance on money mules / layering indicators (rapid movement of funds)",
        ),
        Scenario(
            "FAN_IN",
            "Fan-in: many distinct senders to one account in a window",
            {"window_s": 7 * DAY, "min_counterparties": 8},
            "FATF Professional Money Laundering report (2018): collection accounts",
        ),
        Scenario(
            "FAN_OUT",
            "Fan-out: one account pays many distinct receivers in a window",
            {"window_s": 7 * DAY, "min_counterparties": 8},
            "FATF Professional Money Laundering report (2018): dispersal accounts",
        ),
        Scenario(
            "VELOCITY",
            "Velocity: daily count far above the account's own history",
            {"window_s": DAY, "history_s": 30 * DAY, "factor": 5.0, "min_count": 5},
            "FFIEC BSA/AML Examination Manual, appendix F (unusual activity vs profile)",
        ),
        Scenario(
            "DORMANT",
            "Dormant account reactivated with a significant payment",
            {"dormant_s": 180 * DAY, "min_usd": 5000.0},
            "FFIEC BSA/AML Examination Manual, appendix F (dormant accounts)",
        ),
        Scenario(
            "HIGH_RISK_JURISDICTION",
            "Counterparty in a FATF high-risk / monitored jurisdiction",
            {"countries_file": "fatf_high_risk.txt"},
            "FATF high-risk jurisdictions and increased monitoring lists; EU AMLR art. 29",
        ),
        Scenario(
            "SHORT_CYCLE",
            "Short cycle: funds return to the originator via 1-2 intermediaries in a window",
            {"window_s": 14 * DAY, "min_usd": 0.0},
            "FATF Trade-Based ML / round-tripping indicators",
        ),
    ]
}

_DATA = Path(__file__).with_name("data")


@functools.lru_cache(maxsize=16)
def load_countries(name: str = "fatf_high_risk.txt") -> frozenset:
    """ISO alpha-2 codes from a data file (comments with '#'); read once per process (the files
    ship with the code: a new list is a new release)."""
    out = set()
    for line in (_DATA / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip().upper()
        if line:
            out.add(line)
    return frozenset(out)


def window_sum(ev_key, ev_ts, ev_val, q_key, q_ts, window, *, include_end=True):
    """For each query (key, ts): count and sum of events with same key and ts in (ts-window, ts]."""
    span = np.int64(max(int(ev_ts.max(initial=0)), int(q_ts.max(initial=0))) + window + 2)
    ek = ev_key * span + ev_ts
    order = np.argsort(ek, kind="stable")
    eks = ek[order]
    cs = np.concatenate([[0.0], np.cumsum(ev_val[order])])
    qk = q_key * span + q_ts
    by_query = np.argsort(qk, kind="stable")  # the starts ascend with the ends: one sort for both
    hi = searchsorted_many(eks, qk, "right" if include_end else "left", by_query)
    lo = searchsorted_many(eks, qk - window, "right", by_query)
    return hi - lo, cs[hi] - cs[lo], order, eks, lo, hi


def _refs(table, order, lo, hi, limit=20):
    return [str(x) for x in table.tx_ref[order[lo:hi]][-limit:]]


def _prev_gap(key, ts):
    """Seconds since the previous row with the same key (inf when none), in table order."""
    order = np.lexsort((np.arange(len(key)), key))
    k, t = key[order], ts[order]
    gap = np.full(len(key), np.inf)
    same = np.zeros(len(key), bool)
    same[1:] = k[1:] == k[:-1]
    g = np.full(len(key), np.inf)
    g[1:] = np.where(same[1:], t[1:] - t[:-1], np.inf)
    gap[order] = g
    return gap


def _activity_gaps(src, dst, ts):
    """Per row: seconds since the payer's and since the payee's previous movement on either side
    (paid or received) in an earlier row of the table (inf when none)."""
    n = len(src)
    key = np.concatenate([src, dst])
    row = np.concatenate([np.arange(n), np.arange(n)])
    order = np.argsort(key * n + row, kind="stable")  # per account, its movements in table order
    k, r = key[order], row[order]
    previous = np.full(2 * n, -1, np.int64)
    same = k[1:] == k[:-1]
    previous[1:] = np.where(same, r[:-1], -1)
    # a self-transfer lists its row twice: the second entry's predecessor is the first one's
    twice = np.flatnonzero(np.concatenate([[False], same & (r[1:] == r[:-1])]))
    previous[twice] = previous[twice - 1]
    gap_sorted = np.where(previous >= 0, ts[r] - ts[np.maximum(previous, 0)], np.inf).astype(np.float64)
    gap = np.empty(2 * n)
    gap[order] = gap_sorted
    return gap[:n], gap[n:]


def _new_pair(a, b, ts, window):
    """1 where the (a, b) pair did not occur in the previous ``window`` seconds."""
    pair = a * (max(int(b.max(initial=0)), 0) + 1) + b
    return (_prev_gap(pair, ts) > window).astype(np.float64)


def run_scenarios(
    table: TxTable, *, screen_mask, params_by_code=None, codes=None, prior=None, older_last=None
) -> list[ScenarioHit]:
    """Run the scenario library; hits only for rows where ``screen_mask`` is true.

    ``table`` must be sorted by ``ts``; ``params_by_code`` overrides defaults per scenario code;
    ``codes`` restricts which scenarios run (default: all); ``prior``: a ``prior.Prior``
    summarising history older than every window (``prior.screening_reach``) before the table;
    ``older_last``: {account: last movement before all of that} (DORMANT only).
    """
    n = len(table)
    screen_mask = np.asarray(screen_mask, dtype=bool)
    if screen_mask.shape != (n,):
        raise ValueError("screen_mask must have one boolean per table row")
    hits: list[ScenarioHit] = []
    if n == 0 or not screen_mask.any():
        return hits
    params_by_code = params_by_code or {}
    codes = list(codes or SCENARIOS)
    P = {c: {**SCENARIOS[c].default_params, **params_by_code.get(c, {})} for c in codes}
    ts = table.ts
    usd = table.amount_usd
    (src, dst), _ = (
        factorize(table.src_account, table.dst_account) if prior is None else ((prior.src, prior.dst), 0)
    )
    sidx = np.flatnonzero(screen_mask)
    ones = np.ones(n)

    def add(rows, code, ev):
        for j, r in enumerate(rows):
            hits.append(ScenarioHit(int(r), code, P[code], ev(j, int(r))))

    if "STRUCTURING" in P:
        p = P["STRUCTURING"]
        thr, band, w = p["threshold_usd"], p["band"], int(p["window_s"])
        inband = ((usd >= thr * (1 - band)) & (usd < thr)).astype(np.float64)
        q = sidx[inband[sidx] > 0]
        if len(q):
            cnt, s, order, _, lo, hi = window_sum(
                src[inband > 0], ts[inband > 0], usd[inband > 0], src[q], ts[q], w
            )
            sel = (cnt >= p["min_count"]) & (s >= thr)
            sub = np.flatnonzero(inband > 0)
            add(
                q[sel],
                "STRUCTURING",
                lambda j, r, sel=np.flatnonzero(sel): {  # noqa: B008
                    "count": int(cnt[sel[j]]),
                    "sum_usd": round(float(s[sel[j]]), 2),
                    "window_s": w,
                    "band_usd": [thr * (1 - band), thr],
                    "tx_refs": [str(x) for x in table.tx_ref[sub[order[lo[sel[j]] : hi[sel[j]]]]]],
                },
            )

    if "LARGE_CASH" in P:
        p = P["LARGE_CASH"]
        fm = np.isin(np.char.lower(table.payment_format[sidx]), [f.lower() for f in p["formats"]])
        q = sidx[fm & (usd[sidx] >= p["threshold_usd"])]
        add(
            q,
            "LARGE_CASH",
            lambda j, r: {"amount_usd": round(float(usd[r]), 2), "tx_refs": [str(table.tx_ref[r])]},
        )

    if "ROUND_AMOUNT" in P:
        p = P["ROUND_AMOUNT"]
        a = table.amount_paid[sidx]
        q = sidx[(usd[sidx] >= p["min_usd"]) & (np.mod(a, p["multiple"]) == 0)]
        add(
            q,
            "ROUND_AMOUNT",
            lambda j, r: {
                "amount": float(table.amount_paid[r]),
                "currency": str(table.currency_paid[r]),
                "tx_refs": [str(table.tx_ref[r])],
            },
        )

    if "PASS_THROUGH" in P:
        p = P["PASS_THROUGH"]
        w = int(p["window_s"])
        q = sidx[usd[sidx] >= p["min_usd"]]
        if len(q):
            # inflow to the paying account (src of q) in the window before its payment
            cnt, s, order, _, lo, hi = window_sum(dst, ts, usd, src[q], ts[q], w, include_end=False)
            ratio = np.divide(usd[q], s, out=np.zeros(len(q)), where=s > 0)
            sel = np.flatnonzero((ratio >= p["ratio_low"]) & (ratio <= p["ratio_high"]))
            add(
                q[sel],
                "PASS_THROUGH",
                lambda j, r: {
                    "inflow_usd": round(float(s[sel[j]]), 2),
                    "outflow_usd": round(float(usd[r]), 2),
                    "ratio": round(float(ratio[sel[j]]), 3),
                    "window_s": w,
                    "tx_refs": _refs(table, order, lo[sel[j]], hi[sel[j]]) + [str(table.tx_ref[r])],
                },
            )

    for code, key, other in (("FAN_IN", dst, src), ("FAN_OUT", src, dst)):
        if code not in P:
            continue
        p = P[code]
        w = int(p["window_s"])
        newp = _new_pair(key, other, ts, w)
        cnt, s, order, _, lo, hi = window_sum(key, ts, newp, key[sidx], ts[sidx], w)
        sel = np.flatnonzero(s >= p["min_counterparties"])
        add(
            sidx[sel],
            code,
            lambda j, r, s=s, sel=sel, order=order, lo=lo, hi=hi, w=w: {
                "counterparties": int(s[sel[j]]),
                "tx_count": int(hi[sel[j]] - lo[sel[j]]),
                "window_s": w,
                "tx_refs": _refs(table, order, lo[sel[j]], hi[sel[j]]),
            },
        )

    if "VELOCITY" in P:
        p = P["VELOCITY"]
        w, h = int(p["window_s"]), int(p["history_s"])
        c1, _, order, _, lo, hi = window_sum(src, ts, ones, src[sidx], ts[sidx], w)
        ch, _, _, _, _, _ = window_sum(src, ts, ones, src[sidx], ts[sidx] - w, h - w)
        base = ch * w / max(h - w, 1)
        sel = np.flatnonzero(
            (c1 >= p["min_count"]) & (c1 >= p["factor"] * np.maximum(base, 1.0 / p["factor"]))
        )
        add(
            sidx[sel],
            "VELOCITY",
            lambda j, r: {
                "count_window": int(c1[sel[j]]),
                "expected_from_history": round(float(base[sel[j]]), 3),
                "window_s": w,
                "history_s": h,
                "tx_refs": _refs(table, order, lo[sel[j]], hi[sel[j]]),
            },
        )

    if "DORMANT" in P:
        # Dormant reactivation: any movement, paid or received, on an account that had no movement
        # on either side for at least dormant_s (FFIEC appendix F: "dormant accounts suddenly
        # active"); the hit names the dormant side (the payer's when both were dormant)
        p = P["DORMANT"]
        gap_src, gap_dst = _activity_gaps(src, dst, ts)
        if prior is not None:  # no earlier movement in the table: the last one before it
            for gap, acc in ((gap_src, src), (gap_dst, dst)):
                older = np.isinf(gap) & ~np.isnan(prior.last[acc])
                gap[older] = ts[older] - prior.last[acc[older]]
        if older_last:  # idle for longer than the history reaches back: its last movement before
            large = sidx[usd[sidx] >= p["min_usd"]]
            for gap, accounts in ((gap_src, table.src_account), (gap_dst, table.dst_account)):
                for r in large[np.isinf(gap[large])].tolist():
                    last = older_last.get(str(accounts[r]))
                    if last is not None:
                        gap[r] = ts[r] - last
        dormant_s = np.where(np.isfinite(gap_src) & (gap_src >= p["dormant_s"]), gap_src, -1.0)
        dormant_d = np.where(np.isfinite(gap_dst) & (gap_dst >= p["dormant_s"]), gap_dst, -1.0)
        payer = dormant_s >= 0
        gap_hit = np.where(payer, dormant_s, dormant_d)
        q = sidx[(gap_hit[sidx] >= 0) & (usd[sidx] >= p["min_usd"])]
        add(
            q,
            "DORMANT",
            lambda j, r: {
                "dormant_days": round(float(gap_hit[r]) / DAY, 1),
                "side": "src" if payer[r] else "dst",
                "account": str(table.src_account[r] if payer[r] else table.dst_account[r]),
                "amount_usd": round(float(usd[r]), 2),
                "tx_refs": [str(table.tx_ref[r])],
            },
        )

    if "HIGH_RISK_JURISDICTION" in P:
        p = P["HIGH_RISK_JURISDICTION"]
        cs = sorted(p.get("countries") or load_countries(p["countries_file"]))
        sc = np.char.upper(table.src_country[sidx])
        dc = np.char.upper(table.dst_country[sidx])
        m = np.isin(sc, cs) | np.isin(dc, cs)
        add(
            sidx[m],
            "HIGH_RISK_JURISDICTION",
            lambda j, r: {
                "src_country": str(table.src_country[r]),
                "dst_country": str(table.dst_country[r]),
                "list": p.get("countries_file"),
                "tx_refs": [str(table.tx_ref[r])],
            },
        )

    if "SHORT_CYCLE" in P:
        hits.extend(_cycles(table, src, dst, sidx, P["SHORT_CYCLE"]))
    return hits


def _cycles(table, src, dst, sidx, p):
    """Row u->v at t closes a cycle if v->u (len 2) or v->w, w->u (len 3) happened in (t-window, t]."""
    from scipy import sparse

    w = int(p["window_s"])
    ts = table.ts
    q = sidx[(table.amount_usd[sidx] >= p["min_usd"]) & (src[sidx] != dst[sidx])]
    if not len(q):
        return []
    u, v = src[q], dst[q]
    if len(q) <= SMALL_CYCLE_QUERIES:  # real time: sets beat building sparse matrices
        pairs = set(zip(src.tolist(), dst.tolist(), strict=True))
        payees: dict[int, set] = {}
        payers: dict[int, set] = {}
        for a, b in pairs:
            payees.setdefault(a, set()).add(b)
            payers.setdefault(b, set()).add(a)
        cand = np.array(
            [
                c
                for c, (uu, vv) in enumerate(zip(u.tolist(), v.tolist(), strict=True))
                if (vv, uu) in pairs or not payees.get(vv, set()).isdisjoint(payers.get(uu, ()))
            ],
            dtype=np.int64,
        )
    else:
        n_acc = int(max(src.max(), dst.max())) + 1
        A = sparse.csr_matrix((np.ones(len(src)), (src, dst)), shape=(n_acc, n_acc))
        A.data[:] = 1
        direct = np.asarray(A[v, u]).ravel() > 0
        two = np.asarray(A[v].multiply(A.T[u]).sum(axis=1)).ravel() > 0
        cand = np.flatnonzero(direct | two)
    if not len(cand):
        return []
    # exact, time-ordered check for candidates only
    by_pair = {}
    for i in np.flatnonzero(np.isin(src, np.concatenate([v[cand], u[cand]])) | np.isin(dst, u[cand])):
        by_pair.setdefault((int(src[i]), int(dst[i])), []).append(i)
    out_of = {}
    for (a, b), rows in by_pair.items():
        out_of.setdefault(a, []).append((b, rows))
    hits = []
    for c in cand:
        r = int(q[c])
        t, uu, vv = int(ts[r]), int(u[c]), int(v[c])
        path = None
        for i in by_pair.get((vv, uu), []):
            if t - w < ts[i] <= t and i < r:
                path = [i]
                break
        if path is None:
            for mid, rows1 in out_of.get(vv, []):
                if mid == uu:
                    continue
                for i in rows1:
                    if not (t - w < ts[i] <= t and i < r):
                        continue
                    for k in by_pair.get((mid, uu), []):
                        if ts[i] <= ts[k] <= t and k < r:
                            path = [i, k]
                            break
                    if path:
                        break
                if path:
                    break
        if path:
            hits.append(
                ScenarioHit(
                    r,
                    "SHORT_CYCLE",
                    p,
                    {
                        "cycle_length": len(path) + 1,
                        "accounts": [str(table.src_account[r])]
                        + [str(table.dst_account[i]) for i in [r] + path],
                        "window_s": w,
                        "tx_refs": [str(table.tx_ref[r])] + [str(table.tx_ref[i]) for i in path],
                    },
                )
            )
    return hits
