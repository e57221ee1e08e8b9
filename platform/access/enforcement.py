"""Enforcement: decide, and write the decision to the trail.

`check()` is what services and Celery tasks call before they act (and re-call when a task runs
later than the request that queued it). Every denial is trailed, as the attempted action
("<type>.<action>", e.g. "study.view") with outcome "denied" and the decision's reason, rule
and resource in the payload. Allowed decisions are trailed only when asked: by the caller
(`record_allowed=True`) or by the rule (`record_allowed: true` in the policy, e.g. break-glass).

The event joins the caller's database transaction (audit.services.record). A denial raised
inside a transaction that then rolls back takes its event with it, so check before opening the
transaction that does the work.
"""

from __future__ import annotations

from access.decisions import Decision, decide
from access.errors import PolicyDenied
from access.resources import Resource, resource_for
from audit.services import record


def check(user, action: str, resource, *, actor: object = None, record_allowed: bool = False) -> Decision:
    """The allowed Decision, or PolicyDenied (a PermissionDenied) after trailing the denial.

    actor: who to name on the trail when it is not `user` itself (e.g. the API token used).
    """
    target = resource_for(resource)
    decision = decide(user, action, target)
    trail_decision(
        decision, target=target, actor=user if actor is None else actor, record_allowed=record_allowed
    )
    if not decision.allowed:
        raise PolicyDenied(decision)
    return decision


def trail_decision(
    decision: Decision,
    *,
    target: Resource,
    actor: object,
    record_allowed: bool = False,
    context: dict | None = None,
) -> None:
    """Record a denial always, an allowed decision when the caller or the deciding rule asks."""
    if decision.allowed and not (record_allowed or decision.record_allowed):
        return
    payload = {
        "reason": decision.reason,
        "policy": decision.policy or "",
        "resource": decision.resource,
        "grant": decision.grant or "",
        "failed_conditions": [c.condition for c in decision.conditions if not c.passed],
    }
    if context:
        payload.update(context)
    record(
        actor=actor,
        action=f"{target.resource_type}.{decision.action}",
        resource_type=target.resource_type,
        resource_id=target.identifier[:255],
        outcome="allowed" if decision.allowed else "denied",
        policy=decision.policy or "",
        payload=payload,
    )
