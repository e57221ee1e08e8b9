"""Who may read and export the decision trail: the access policy decides (`read` / `export` on
`trail:<chain>`). `check_trail_access` enforces it for a request; refusals (and allowed exports,
per the policy's record_allowed) are written to the trail by the access app's enforcement.

The access app sits above the trail (every decision it makes is written here), so the trail
imports nothing of it: the access app lends its decision functions at start-up (AccessConfig.ready
calls `use_policy`). Until then every check refuses.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from audit.actors import actor_from_request

READ, EXPORT = "read", "export"
DENIAL_MESSAGES = {
    READ: "The access policy does not let your role read the decision trail.",
    EXPORT: "The access policy does not let your role export the decision trail.",
}
PAGE_RESOURCE = "trail:suite"

_policy: dict[str, Callable] = {}


def use_policy(*, decide: Callable, trail_decision: Callable, resource_for: Callable) -> None:
    """Called by the access app's ready(): decide(user, action, resource) -> Decision, and how it
    trails a decision (access.enforcement.trail_decision) and names a resource."""
    _policy.update(decide=decide, trail_decision=trail_decision, resource_for=resource_for)


class TrailDenied(PermissionDenied):
    """A refused trail read or export; carries the policy's decision (the 403 page names it)."""

    def __init__(self, decision, message: str):
        self.decision = decision
        super().__init__(message)


def _allowed(user, action: str, chain: str) -> bool:
    if user is None or not user.is_authenticated or not _policy:
        return False
    return _policy["decide"](user, action, f"trail:{chain}").allowed


def can_read_trail(user, chain: str = "suite") -> bool:
    return _allowed(user, READ, chain)


def can_export_trail(user, chain: str = "suite") -> bool:
    return _allowed(user, EXPORT, chain)


# Which events a reader sees is decided per resource type of the event: "read" on
# trail_event:<type> (a compliance officer reads AML events, an auditor every event, an admin the
# platform's). Sealed texts in a payload open with "unseal" on the same resource.
EVENT_RESOURCE_TYPE = "trail_event"
UNSEAL = "unseal"


def readable_event_types(user, present) -> list[str]:
    """Of the event resource types `present`, those the policy lets `user` read."""
    if user is None or not user.is_authenticated or not _policy:
        return []
    return [
        rtype for rtype in present if _policy["decide"](user, READ, f"{EVENT_RESOURCE_TYPE}:{rtype}").allowed
    ]


def may_unseal(user, resource_type: str) -> bool:
    """Whether the policy lets `user` open the sealed texts of an event about `resource_type`: the
    question unseal_decision asks, untrailed (a page asks it to decide whether to offer the link)."""
    if user is None or not user.is_authenticated or not _policy:
        return False
    target = _policy["resource_for"](f"{EVENT_RESOURCE_TYPE}:{resource_type}")
    return _policy["decide"](user, UNSEAL, target).allowed


def unseal_decision(user, resource_type: str, *, actor):
    """The policy's Decision on opening the sealed texts of an event about `resource_type`; trailed
    (a refusal always, an opening when the rule says record_allowed)."""
    if user is None or not user.is_authenticated or not _policy:
        return None
    target = _policy["resource_for"](f"{EVENT_RESOURCE_TYPE}:{resource_type}")
    decision = _policy["decide"](user, UNSEAL, target)
    _policy["trail_decision"](decision, target=target, actor=actor)
    return decision


def trail_decision_for(request, *, action: str, chain: str = "suite"):
    """The policy's Decision for the request's user; a refusal is trailed. None when anonymous
    (sent to log in, not denied) or before the access app lent its policy."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not _policy:
        return None
    target = _policy["resource_for"](f"trail:{chain if chain != '*' else 'suite'}")
    decision = _policy["decide"](user, action, target)
    if not decision.allowed:  # an allowed export is trailed by the export itself, with its range
        _policy["trail_decision"](decision, target=target, actor=actor_from_request(request),
                                  context={"method": request.method, "path": request.path})  # fmt: skip
    return decision


def check_trail_access(request, *, action: str, chain: str = "suite") -> bool:
    """Whether the request's user may `action` ("read" or "export") the trail; a refusal is trailed.

    Anonymous requests are refused without an event: they are sent to log in, not denied.
    """
    decision = trail_decision_for(request, action=action, chain=chain)
    return bool(decision is not None and decision.allowed)


def trail_page(action: str):
    """A trail page: sign-in, then the policy's `action` on trail:suite (a refusal is a 403 naming
    the check). Declares the question as the page's policy, so the portal's menu asks the same."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            decision = trail_decision_for(request, action=action)
            if decision is None or not decision.allowed:
                raise TrailDenied(decision, DENIAL_MESSAGES[action])
            return view(request, *args, **kwargs)

        wrapper.page_policy = (action, PAGE_RESOURCE)
        return wrapper

    return decorator
