"""Reads of the finance app, scoped by the access policy (auditors see every team, officers their own)."""

from __future__ import annotations

import json

from django.db.models import Q
from django.http import Http404
from django.utils import timezone

from access.enforcement import check
from access.errors import PolicyDenied
from access.querysets import restrict
from audit.models import Event
from finance.models import SAR, Alert, Case, ScenarioVersion, Transaction

NOT_FOUND_MESSAGE = "No such item, or you may not see it."
SLA_HOURS = {"hold": 4, "review": 72}  # time to a first decision; a held payment waits on the officer
SORTS = {"risk": ("-risk", "created_at"), "age": ("created_at",), "newest": ("-created_at",)}


def _pk(value) -> int:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise Http404(NOT_FOUND_MESSAGE) from None
    if not 0 < pk < 2**63:  # no such row; a larger number would overflow the database lookup (a 500)
        raise Http404(NOT_FOUND_MESSAGE)
    return pk


def _checked(user, obj, action: str, actor=None):

    if obj is None:
        raise Http404(NOT_FOUND_MESSAGE)
    try:
        check(user, action, obj, actor=actor)
    except PolicyDenied as denied:
        raise Http404(NOT_FOUND_MESSAGE) from denied  # the 404 handler makes sure it is trailed
    return obj


def alerts_visible_to(
    user, *, status: str = "", decision: str = "", scenario: str = "", team: str = "", sort: str = "risk"
):
    queryset = restrict(Alert.objects.select_related("transaction", "assignee", "case"), user, "view")
    if status:
        queryset = queryset.filter(status=status)
    if decision:
        queryset = queryset.filter(decision=decision)
    if team:
        queryset = queryset.filter(team=team)
    if scenario:
        queryset = queryset.filter(scenario_versions__code=scenario).distinct()
    return queryset.order_by(*SORTS.get(sort, SORTS["risk"]))


def alert_sla(alert: Alert, now=None) -> dict:
    """Age of an open alert against its SLA (hours); overdue when past it."""
    now = now or timezone.now()
    age_h = (now - alert.created_at).total_seconds() / 3600
    limit = SLA_HOURS.get(alert.decision, 72)
    return {
        "age_hours": round(age_h, 1),
        "sla_hours": limit,
        "overdue": alert.status != Alert.Status.CLOSED and age_h > limit,
    }


def alert_for(user, alert_id, *, action: str = "view", actor=None) -> Alert:
    return _checked(
        user,
        Alert.objects.select_related("transaction", "case").filter(pk=_pk(alert_id)).first(),
        action,
        actor,
    )


def alerts_for(user, alert_ids, *, action: str, actor=None) -> list[Alert]:
    ids = [_pk(i) for i in alert_ids]
    found = {a.pk: a for a in Alert.objects.select_related("transaction").filter(pk__in=ids)}
    return [_checked(user, found.get(i), action, actor) for i in ids]


def cases_visible_to(user, *, status: str = ""):
    queryset = restrict(Case.objects.select_related("assignee"), user, "view")
    return queryset.filter(status=status) if status else queryset.order_by("-created_at")


def case_for(user, case_id, *, action: str = "view", actor=None) -> Case:
    return _checked(user, Case.objects.filter(pk=_pk(case_id)).first(), action, actor)


def sar_for(user, sar_id, *, action: str = "view", actor=None) -> SAR:
    return _checked(user, SAR.objects.select_related("case").filter(pk=_pk(sar_id)).first(), action, actor)


def transactions_visible_to(user):
    return restrict(Transaction.objects.all(), user, "view")


def scenario_versions_visible_to(user):
    return restrict(
        ScenarioVersion.objects.select_related("created_by", "approved_by"), user, "view"
    ).order_by("code", "-version")


def scenario_version_for(user, version_id, *, action: str = "view", actor=None) -> ScenarioVersion:
    return _checked(user, ScenarioVersion.objects.filter(pk=_pk(version_id)).first(), action, actor)


def trail_for(*resources) -> list[dict]:
    """Trail events about the given (resource_type, id) pairs, oldest first (payloads decoded)."""

    if not resources:
        return []
    condition = Q()
    for resource_type, resource_id in resources:
        condition |= Q(resource_type=resource_type, resource_id=str(resource_id))
    events = Event.objects.filter(condition).order_by("chain", "sequence")[:500]
    return [
        {
            "id": e.pk,
            "sequence": e.sequence,
            "timestamp": e.timestamp,
            "actor": e.actor_label,
            "action": e.action,
            "outcome": e.outcome,
            "policy": e.policy,
            "hash": e.hash,
            "payload": json.loads(e.payload_json),
        }
        for e in events
    ]


def case_graph(case: Case, *, limit: int = 60) -> dict:
    """Transactions around the case's accounts (the alerted ones and their direct counterparties)."""
    alerts = list(case.alerts.select_related("transaction"))
    accounts = (
        {case.account}
        | {a.transaction.src_account for a in alerts}
        | {a.transaction.dst_account for a in alerts}
    )
    accounts.discard("")
    alerted = {a.transaction_id for a in alerts}
    txs = list(
        Transaction.objects.filter(team=case.team)
        .filter(Q(src_account__in=accounts) | Q(dst_account__in=accounts))
        .order_by("-ts")[:limit]
    )
    return {"accounts": accounts, "transactions": txs, "alerted": alerted, "focus": case.account}
