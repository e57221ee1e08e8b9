"""Enforcement: decide, and write the decision to the trail.

`check()` is what services and Celery tasks call before they act (and re-call when a task runs
later than the request that queued it). Every denial is trailed, as the attempted action
("<type>.<action>", e.g. "study.view") with outcome "denied" and the decision's reason, rule
and resource in the payload. Allowed decisions are trailed only when asked: by the caller
(`record_allowed=True`) or by the rule (`record_allowed: true` in the policy, e.g. break-glass).

The event joins the caller's database transaction (audit.services.record). A denial raised
inside a service's transaction rolls that transaction back, its event with it: the PolicyDenied
carries a `DenialTrail`, and whoever handles the exception afterwards calls `trail_denial`, which
writes the denial again if it is gone (the 403/404 handlers, the API's exception handler
`access.drf.exception_handler`, the views that show a refusal, and failed Celery tasks).
"""

from __future__ import annotations

from access.decisions import Decision, decide
from access.errors import PolicyDenied
from access.resources import Resource, resource_for
from audit.models import Event
from audit.services import record


def check(user, action: str, resource, *, actor: object = None, record_allowed: bool = False) -> Decision:
    """The allowed Decision, or PolicyDenied (a PermissionDenied) after trailing the denial.

    actor: who to name on the trail when it is not `user` itself (e.g. the API token used).
    """
    target = resource_for(resource)
    decision = decide(user, action, target)
    who = user if actor is None else actor
    if decision.allowed:
        trail_decision(decision, target=target, actor=who, record_allowed=record_allowed)
        return decision
    trail = DenialTrail(
        lambda: trail_decision(decision, target=target, actor=who, record_allowed=record_allowed)
    )
    trail()
    raise PolicyDenied(decision, trail=trail)


class DenialTrail:
    """Writes a denial to the trail, and writes it again if the transaction it went into was rolled
    back. A service checks inside its own transaction (`@transaction.atomic`), and the PolicyDenied it
    raises rolls that transaction back, the denial's record with it; whoever handles the exception
    afterwards (the 403 and 404 handlers, the API's exception handler, a view that shows the refusal,
    a task) calls `trail_denial`, and the denial is on the trail once."""

    def __init__(self, write):
        self._write = write
        self._event = None

    def __call__(self) -> None:
        event = self._event
        if event is not None and Event.objects.filter(pk=event.pk, hash=event.hash).exists():
            return
        self._event = self._write()


def trail_denial(exception: BaseException | None) -> None:
    """Make sure the denial behind `exception` (a PolicyDenied, or an error raised from one, such as
    the Http404 that hides a resource from someone who may not see it) is on the trail."""
    seen = set()
    while exception is not None and id(exception) not in seen:
        seen.add(id(exception))
        trail = getattr(exception, "trail", None)
        if isinstance(exception, PolicyDenied) and trail is not None:
            trail()
            return
        exception = exception.__cause__ or exception.__context__


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
    return record(
        actor=actor,
        action=f"{target.resource_type}.{decision.action}",
        resource_type=target.resource_type,
        resource_id=target.identifier[:255],
        outcome="allowed" if decision.allowed else "denied",
        policy=decision.policy or "",
        payload=payload,
    )
