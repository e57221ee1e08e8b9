"""Screening engine: rule hits + name matches + model score -> risk and decision (no Django).

    decisions = screen(table, history, scenarios, name_index, model, party_names={tx_ref: [names]})
    for d in decisions:            # one Decision per row of ``table`` (its order)
        d.decision                 # "approve" | "review" | "hold"
        d.evidence                 # JSON-ready dict for review/hold (None for approve)
    replay(d.evidence)             # -> Replay(decision, risk, identical, differences)

Risk combines the signals as a noisy-OR: ``risk = 1 - (1 - model_weight * p_model)
* prod(1 - rule_weight) * prod(1 - name_weight * match_score)``; ``review`` at ``alert_threshold``,
``hold`` at ``hold_threshold`` or when a name match reaches ``name_hold_score`` (a sanctions hit
stops the payment whatever the other signals say).

The evidence of an alert holds everything needed to recompute it: the transaction row, each rule
hit with its scenario version, parameters, weight and the numbers it fired on; the model version,
the exact feature values, the margin, the probability and the SHAP contributions; the list version
and each match with its normalised tokens and weights; the engine configuration. ``replay``
recomputes from that dict alone: each rule predicate from its numbers and parameters, the model
probability from the contributions, the transaction's own features (amount, format, currency...)
from the stored row (and, when the model of that version is passed, the contributions themselves
from the feature values), each match score from its tokens and weights,
then risk and decision; ``identical`` is True when every recomputed value equals the stored one.
Rule numbers are stored rounded (cents, 3 decimals for ratios), so a rule sitting exactly on its
boundary to within that rounding is the one case replay can read differently.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .features import FEATURE_NAMES, TRANSACTION_FEATURES, compute_features
from .names import score_pair_from_details
from .prior import Prior, screening_reach
from .scenarios import DAY, SCENARIOS, load_countries, run_scenarios
from .table import STR_COLS, TxTable

EVIDENCE_SCHEMA = 1

DEFAULT_RULE_WEIGHTS = {
    "STRUCTURING": 0.6,
    "LARGE_CASH": 0.3,
    "ROUND_AMOUNT": 0.15,
    "PASS_THROUGH": 0.4,
    "FAN_IN": 0.35,
    "FAN_OUT": 0.35,
    "VELOCITY": 0.3,
    "DORMANT": 0.3,
    "HIGH_RISK_JURISDICTION": 0.35,
    "SHORT_CYCLE": 0.5,
}


@dataclass(frozen=True)
class ScenarioSpec:
    """An active scenario version: what the engine runs and what an alert points to."""

    code: str
    version: int = 1
    params: dict = field(default_factory=dict)


def default_scenarios() -> list[ScenarioSpec]:
    """Version 1 of every scenario in the library with its default parameters."""
    return [ScenarioSpec(code, 1, dict(s.default_params)) for code, s in SCENARIOS.items()]


@dataclass(frozen=True)
class EngineConfig:
    rule_weights: dict = field(default_factory=lambda: dict(DEFAULT_RULE_WEIGHTS))
    model_weight: float = 1.0
    name_weight: float = 1.0
    alert_threshold: float = 0.5
    hold_threshold: float = 0.9
    name_threshold: float = 0.82
    name_hold_score: float = 0.92


@dataclass(slots=True)
class Decision:
    row: int
    tx_ref: str
    decision: str
    risk: float
    evidence: dict | None = None


@dataclass
class Replay:
    decision: str
    risk: float
    identical: bool
    differences: list[str]


def combine(model_p, rule_weights, name_scores, config: EngineConfig) -> tuple[float, str]:
    """The risk formula and the decision (see module docstring)."""
    keep = 1.0
    if model_p is not None:
        keep *= 1.0 - config.model_weight * model_p
    for w in rule_weights:
        keep *= 1.0 - w
    for s in name_scores:
        keep *= 1.0 - config.name_weight * s
    risk = 1.0 - keep
    if risk >= config.hold_threshold or any(s >= config.name_hold_score for s in name_scores):
        return risk, "hold"
    if risk >= config.alert_threshold:
        return risk, "review"
    return risk, "approve"


def _row_dict(table: TxTable, r: int) -> dict:
    d = {c: str(getattr(table, c)[r]) for c in STR_COLS}
    d.update(
        ts=int(table.ts[r]),
        amount_paid=float(table.amount_paid[r]),
        amount_received=float(table.amount_received[r]),
        amount_usd=float(table.amount_usd[r]),
    )
    return d


def _plain(x):
    """JSON-ready copy (numpy scalars and tuples made plain)."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


def in_time_order(ts: np.ndarray) -> bool:
    """True when ``ts`` never decreases: a stable sort by time would leave the rows as they are."""
    return len(ts) < 2 or bool((ts[1:] >= ts[:-1]).all())


DECISIONS = ("approve", "review", "hold")  # the codes of ``Screened.decision``


@dataclass
class Screened:
    """``screen``'s result as columns, in ``table``'s order: a decision code per row (an index
    into ``DECISIONS``), the risk per row, and the evidence of the rows that carry one. What the
    persistence of a large batch needs, without an object per row."""

    decision: np.ndarray  # int8
    risk: np.ndarray  # float64
    evidence: dict[int, dict]  # row -> evidence (decision other than approve, or evidence_for_all)

    def decisions(self, tx_ref: np.ndarray) -> list[Decision]:
        codes, risks = self.decision.tolist(), self.risk.tolist()
        return [
            Decision(i, ref, DECISIONS[code], risk, self.evidence.get(i))
            for i, (ref, code, risk) in enumerate(zip(tx_ref.tolist(), codes, risks, strict=True))
        ]


def screen(
    table: TxTable, history: TxTable | None, scenarios, name_index, model, **options
) -> list[Decision]:
    """Screen every row of ``table`` against ``history``: one ``Decision`` per row (see
    ``screen_columns`` for the arguments)."""
    return screen_columns(table, history, scenarios, name_index, model, **options).decisions(table.tx_ref)


def screen_columns(
    table: TxTable,
    history: TxTable | None,
    scenarios: list[ScenarioSpec] | None,
    name_index,
    model,
    *,
    party_names: dict | None = None,
    config: EngineConfig | None = None,
    evidence_for_all: bool = False,
    summarise_older: bool = True,
    older_last_movement: dict[str, int] | None = None,
) -> Screened:
    """Screen every row of ``table`` against ``history`` (earlier transactions, may be None).

    ``scenarios``: active versions (None: library defaults); ``name_index``: a names.NameIndex or
    None; ``model``: a risk_model.RiskModel or None (rules and names only); ``party_names``:
    {tx_ref: [originator name, beneficiary name, ...]} to screen against the list.
    ``summarise_older``: history older than every window is read as per-account and per-pair
    totals (``prior.Prior``; the same values, at a cost that does not grow with the history).
    ``older_last_movement``: {account: its last movement, either side, before ``history``} where
    the caller knows it: DORMANT reads it for an account with no movement in the history (one idle
    for longer than the history reaches back); nothing else does, so every feature still depends
    on the history passed only.
    """
    config = config or EngineConfig()
    scenarios = default_scenarios() if scenarios is None else list(scenarios)
    n_new = len(table)
    if n_new == 0:
        return Screened(np.zeros(0, np.int8), np.zeros(0), {})
    specs = {s.code: s for s in scenarios}
    params_by_code = {c: s.params for c, s in specs.items()}
    hist = history if history is not None and len(history) else None
    older = None
    if hist is not None and summarise_older:
        cut = int(table.ts.min()) - screening_reach(params_by_code, with_model=model is not None)
        is_older = hist.ts < cut
        if is_older.any():
            older = (hist.src_account[is_older], hist.dst_account[is_older], hist.ts[is_older])
            hist = hist.take(~is_older) if not is_older.all() else None
    full = TxTable.concat([hist, table]) if hist is not None else table
    is_new = np.zeros(len(full), bool)
    is_new[len(full) - n_new :] = True
    if in_time_order(full.ts):  # the usual case (history, then the newer batch): no copy
        order = np.arange(len(full))
    else:
        order = np.argsort(full.ts, kind="stable")
        full = full.take(order)
        is_new = is_new[order]
    new_rows = np.flatnonzero(is_new)  # positions in `full`, in time order
    pos_in_table = order[new_rows] - (len(order) - n_new)  # row index in `table`
    prior = Prior.build(*older, full.src_account, full.dst_account) if older is not None else None

    hits_by_row: dict[int, list] = {}
    if specs:
        for h in run_scenarios(
            full,
            screen_mask=is_new,
            params_by_code=params_by_code,
            codes=list(specs),
            prior=prior,
            older_last=older_last_movement,
        ):
            hits_by_row.setdefault(h.row, []).append(h)

    margins = None
    feats = None
    if model is not None:
        feats = compute_features(full, new_rows, prior=prior)
        margins = model.margin(feats)

    matches_by_ref: dict[str, list] = {}
    if name_index is not None and party_names:
        refs, names = [], []
        for r in new_rows:
            ref = str(full.tx_ref[r])
            for nm in party_names.get(ref, ()):
                if nm:
                    refs.append(ref)
                    names.append(nm)
        for ref, nm, ms in zip(
            refs, names, name_index.match_many(names, threshold=config.name_threshold), strict=True
        ):
            for m in ms:
                matches_by_ref.setdefault(ref, []).append((nm, m))

    decision_codes = np.zeros(n_new, np.int8)  # approve unless set below
    risks = np.empty(n_new)
    evidences: dict[int, dict] = {}
    pending = []  # rows that need evidence: (k, r, ref, hits, rule weights, name scores)
    refs = full.tx_ref[new_rows].tolist()
    positions = pos_in_table.tolist()
    # The model alone, for every row at once (the same float operations as combine(), so the same
    # bits); combine() runs row by row only where a rule or a name fired or the model alone alerts.
    if margins is not None:
        probabilities = np.array([1.0 / (1.0 + math.exp(-m)) for m in margins.tolist()])
        model_risk = 1.0 - (1.0 - config.model_weight * probabilities)
    else:
        probabilities = None
        model_risk = np.zeros(len(new_rows))
    closer = np.zeros(len(new_rows), bool)
    closer[model_risk >= config.alert_threshold] = True
    if hits_by_row:
        closer[np.searchsorted(new_rows, np.fromiter(hits_by_row, np.int64))] = True
    if matches_by_ref:
        closer[[k for k, ref in enumerate(refs) if ref in matches_by_ref]] = True
    if evidence_for_all:
        closer[:] = True
    approved = np.flatnonzero(~closer)
    risks[pos_in_table[approved]] = model_risk[approved]
    for k in np.flatnonzero(closer).tolist():
        r = int(new_rows[k])
        ref = refs[k]
        hits = hits_by_row.get(r, [])
        rule_w = [config.rule_weights.get(h.code, 0.0) for h in hits]
        name_s = [m.score for _, m in matches_by_ref.get(ref, [])]
        p = None if probabilities is None else float(probabilities[k])
        risk, decision = combine(p, rule_w, name_s, config)
        if decision != "approve" or evidence_for_all:
            pending.append((k, r, ref, hits, rule_w, name_s))
        else:
            risks[positions[k]] = risk
    scored = model.score_many(feats[[k for k, *_ in pending]]) if model is not None and pending else []
    config_plain = _plain(asdict(config))  # one copy shared by every evidence dict of this call
    list_version = getattr(name_index, "version", None)
    for j, (k, r, ref, hits, rule_w, name_s) in enumerate(pending):
        model_ev = None
        p = None
        if model is not None:
            # the evidence's probability is the one its contributions give (replay recomputes it)
            p, contrib = scored[j]
            model_ev = {
                "version": model.version,
                "features": dict(zip(model.feature_names, feats[k].tolist(), strict=True)),
                "margin": sum(contrib.values()),
                "score": p,
                "contributions": contrib,
                "weight": config.model_weight,
            }
        risk, decision = combine(p, rule_w, name_s, config)
        # every value below is already a plain Python value (rule evidence is built with int(),
        # float() and str(); features and contributions come from .tolist()), so no deep copy
        evidence = {
            "schema": EVIDENCE_SCHEMA,
            "tx": _row_dict(full, r),
            "rules": [
                {
                    "code": h.code,
                    "version": specs[h.code].version,
                    "params": h.params,
                    "weight": config.rule_weights.get(h.code, 0.0),
                    "hit": h.evidence,
                }
                for h in hits
            ],
            "model": model_ev,
            "names": {
                "list_version": list_version,
                "matches": [
                    {
                        "party_name": nm,
                        "entry_id": m.entry_id,
                        "entry_name": m.entry_name,
                        "score": m.score,
                        "reason": m.reason,
                        "details": m.details,
                    }
                    for nm, m in matches_by_ref.get(ref, [])
                ],
            },
            "config": config_plain,
            "risk": risk,
            "decision": decision,
        }
        at = positions[k]
        decision_codes[at], risks[at] = DECISIONS.index(decision), risk
        if decision != "approve" or evidence_for_all:  # approve: on the boundary, the contributions'
            evidences[at] = evidence  # probability fell just below
    return Screened(decision_codes, risks, evidences)


def rule_holds(code: str, params: dict, hit: dict, tx: dict) -> bool:
    """Re-check a rule's condition from the numbers stored in its hit evidence."""
    p = {**SCENARIOS[code].default_params, **params} if code in SCENARIOS else params
    if code == "STRUCTURING":
        return hit["count"] >= p["min_count"] and hit["sum_usd"] >= p["threshold_usd"]
    if code == "LARGE_CASH":
        fmts = [f.lower() for f in p["formats"]]
        return tx["payment_format"].lower() in fmts and hit["amount_usd"] >= p["threshold_usd"]
    if code == "ROUND_AMOUNT":
        return tx["amount_usd"] >= p["min_usd"] and math.fmod(hit["amount"], p["multiple"]) == 0
    if code == "PASS_THROUGH":
        return p["ratio_low"] <= hit["ratio"] <= p["ratio_high"] and tx["amount_usd"] >= p["min_usd"]
    if code in ("FAN_IN", "FAN_OUT"):
        return hit["counterparties"] >= p["min_counterparties"]
    if code == "VELOCITY":
        c, base = hit["count_window"], hit["expected_from_history"]
        return c >= p["min_count"] and c >= p["factor"] * max(base, 1.0 / p["factor"]) - 1e-3 * p["factor"]
    if code == "DORMANT":
        return hit["dormant_days"] * DAY >= p["dormant_s"] - 0.05 * DAY and tx["amount_usd"] >= p["min_usd"]
    if code == "HIGH_RISK_JURISDICTION":
        cs = set(p.get("countries") or load_countries(p["countries_file"]))
        return hit["src_country"].upper() in cs or hit["dst_country"].upper() in cs
    if code == "SHORT_CYCLE":
        acc = hit["accounts"]
        return hit["cycle_length"] in (2, 3) and acc[0] == acc[-1] and len(acc) == hit["cycle_length"] + 1
    raise ValueError(f"unknown scenario code {code!r}")


def replay(evidence: dict, *, model=None) -> Replay:
    """Recompute an alert's decision from its evidence (see module docstring).

    ``model``: optionally the RiskModel of ``evidence["model"]["version"]``; with it the SHAP
    contributions are recomputed from the stored feature values too.
    """
    diffs: list[str] = []
    if evidence.get("schema") != EVIDENCE_SCHEMA:
        raise ValueError(f"unknown evidence schema {evidence.get('schema')!r}")
    cfg = EngineConfig(**evidence["config"])
    tx = evidence["tx"]
    rule_w = []
    for rule in evidence["rules"]:
        if not rule_holds(rule["code"], rule["params"], rule["hit"], tx):
            diffs.append(f"rule {rule['code']} v{rule['version']}: condition does not hold on its numbers")
        rule_w.append(cfg.rule_weights.get(rule["code"], 0.0))
        if rule["weight"] != cfg.rule_weights.get(rule["code"], 0.0):
            diffs.append(f"rule {rule['code']}: weight differs from the configuration")
    p = None
    m = evidence.get("model")
    if m is not None:
        margin = float(sum(m["contributions"].values()))
        if margin != m["margin"]:
            diffs.append("model: contributions do not sum to the stored margin")
        p = float(1.0 / (1.0 + math.exp(-margin)))
        if p != m["score"]:
            diffs.append(f"model: probability {p!r} != stored {m['score']!r}")
        alone = compute_features(TxTable.from_rows([tx]), [0])[0]
        for name, value in zip(FEATURE_NAMES, alone, strict=True):
            if name in TRANSACTION_FEATURES and m["features"].get(name) != float(value):
                diffs.append(f"model: feature {name} does not match the stored transaction")
        if model is not None:
            if model.version != m["version"]:
                raise ValueError(f"model version {model.version} given, evidence needs {m['version']}")
            if list(m["features"]) != list(model.feature_names):
                diffs.append("model: feature names differ")
            p2, contrib = model.score(m["features"])
            if contrib != m["contributions"]:
                diffs.append("model: contributions recomputed from the features differ")
            if p2 != m["score"]:
                diffs.append(f"model: score recomputed from the features {p2!r} != stored {m['score']!r}")
    name_s = []
    for match in evidence["names"]["matches"]:
        s = score_pair_from_details(match["details"])
        if s != match["score"]:
            diffs.append(f"name match {match['entry_id']}: score {s} != stored {match['score']}")
        name_s.append(s)
    risk, decision = combine(p, rule_w, name_s, cfg)
    if risk != evidence["risk"]:
        diffs.append(f"risk {risk!r} != stored {evidence['risk']!r}")
    if decision != evidence["decision"]:
        diffs.append(f"decision {decision} != stored {evidence['decision']}")
    return Replay(decision, risk, not diffs, diffs)


__all__ = [
    "DECISIONS",
    "FEATURE_NAMES",
    "Decision",
    "EngineConfig",
    "Replay",
    "ScenarioSpec",
    "combine",
    "default_scenarios",
    "replay",
    "rule_holds",
    "screen",
    "screen_columns",
    "Screened",
]
