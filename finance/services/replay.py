"""Recompute an alert from its trail event alone and say whether the result is identical."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from audit.models import Event
from finance.services.errors import FinanceRefused
from finance.services.ingest import risk_decision, screen_table, table_from_inputs


@dataclass
class ReplayResult:
    alert_id: int
    identical: bool
    event_sequence: int
    event_hash_ok: bool
    recorded: dict
    recomputed: dict
    differences: list[str]


def _normalise(value):
    return json.loads(json.dumps(value, sort_keys=True))


def replay_evidence(evidence: dict) -> dict:
    """Hits, risk and decision recomputed from an alert's evidence (the scenario code runs again)."""
    table = table_from_inputs(evidence["inputs"])
    mask = np.zeros(len(table), dtype=bool)
    mask[int(evidence["screened_row"])] = True
    versions = evidence["scenario_versions"]
    hits = screen_table(table, mask, versions).get(int(evidence["screened_row"]), [])
    risk, decision = risk_decision(hits, evidence["thresholds"])
    return {"hits": hits, "risk": risk, "decision": decision}


def alert_replay(*, alert_id: int) -> ReplayResult:
    """Read the alert's `alert.raise` event from the trail (not the alert row), check the event's
    hash, recompute, compare."""

    event = (
        Event.objects.filter(action="alert.raise", resource_type="alert", resource_id=str(alert_id))
        .order_by("sequence")
        .first()
    )
    if event is None:
        raise FinanceRefused(f"No alert.raise event for alert {alert_id} on the trail.")
    evidence = json.loads(event.payload_json)
    recorded = {k: evidence[k] for k in ("hits", "risk", "decision")}
    recomputed = replay_evidence(evidence)
    differences = [
        key
        for key in ("hits", "risk", "decision")
        if _normalise(recorded[key]) != _normalise(recomputed[key])
    ]
    hash_ok = event.computed_hash() == event.hash
    if not hash_ok:
        differences.append("event hash (the trail event was altered)")
    return ReplayResult(
        alert_id=alert_id,
        identical=not differences,
        event_sequence=event.sequence,
        event_hash_ok=hash_ok,
        recorded=recorded,
        recomputed=_normalise(recomputed),
        differences=differences,
    )
