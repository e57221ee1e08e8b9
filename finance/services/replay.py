"""Recompute an alert from its trail event alone and say whether the result is identical.

The event (not the alert row) is read and its hash checked; the sealed name-match details are
opened with the vault; ``finance.screening.engine.replay`` then recomputes each rule's condition
from its numbers and parameters, the transaction's own features from the stored row, the model's
SHAP contributions and score from the stored feature values with the stored model of that version
(a content hash, checked on load), each name-match score from its tokens and weights, and the risk
and decision with the stored engine configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from audit.models import Event
from finance.models import name_hash
from finance.screening.engine import FEATURE_NAMES, replay
from finance.services.errors import FinanceRefused
from finance.services.persist import open_matches
from finance.services.setup import model_of_version


@dataclass
class ReplayResult:
    alert_id: int
    identical: bool
    event_sequence: int
    event_hash_ok: bool
    recorded: dict
    recomputed: dict
    differences: list[str]


def replay_evidence(evidence: dict) -> tuple[dict, list[str]]:
    """(recomputed risk and decision, differences) for an alert's trail evidence."""
    try:
        opened = open_matches(evidence)
    except Exception as error:  # a sealed blob that no longer opens is a difference, not a crash
        return {"risk": None, "decision": None}, [f"name matches: sealed details do not open ({error})"]
    differences = [
        f"name match {m['entry_id']}: party hash does not match the sealed name"
        for m in opened["names"]["matches"]
        if name_hash(m["party_name"]) != m["party_hash"]
    ]
    model = None
    if opened.get("model"):
        model = model_of_version(opened["model"]["version"])
        if model is None:
            differences.append(
                f"model {opened['model']['version']} is not stored: contributions not recomputed"
            )
    if opened.get("model"):
        # the trail stores JSON with sorted keys: put features and contributions back in the model's
        # order, the order the margin was summed in (float addition is not associative)
        order = list(model.feature_names if model is not None else FEATURE_NAMES)
        stored = opened["model"]
        if set(stored["features"]) == set(order) and set(stored["contributions"]) == {*order, "bias"}:
            stored["features"] = {k: stored["features"][k] for k in order}
            stored["contributions"] = {k: stored["contributions"][k] for k in [*order, "bias"]}
    try:
        result = replay(opened, model=model)
    except (KeyError, TypeError, ValueError) as error:
        return {"risk": None, "decision": None}, [*differences, f"evidence unreadable: {error}"]
    return {"risk": result.risk, "decision": result.decision}, [*differences, *result.differences]


def alert_replay(*, alert_id: int) -> ReplayResult:
    """Read the alert's `alert.raise` event from the trail (not the alert row), check the event's
    hash, recompute, compare."""
    event = (
        # an AML alert's event carries its evidence (before manufacturing named its own alerts
        # "machine_alert", a plant alert of the same id shared action and resource type)
        Event.objects.filter(action="alert.raise", resource_type="alert", resource_id=str(alert_id))
        .filter(payload_json__contains='"evidence":')
        .order_by("sequence")
        .first()
    )
    if event is None:
        raise FinanceRefused(f"No alert.raise event for alert {alert_id} on the trail.")
    evidence = json.loads(event.payload_json)["evidence"]
    recorded = {"risk": evidence.get("risk"), "decision": evidence.get("decision")}
    recomputed, differences = replay_evidence(evidence)
    hash_ok = event.computed_hash() == event.hash
    if not hash_ok:
        differences.append("event hash (the trail event was altered)")
    return ReplayResult(
        alert_id=alert_id,
        identical=not differences,
        event_sequence=event.sequence,
        event_hash_ok=hash_ok,
        recorded=recorded,
        recomputed=recomputed,
        differences=differences,
    )
