"""Who may read and export the decision trail: the access policy decides (`read` / `export` on
`trail:<chain>`). `check_trail_access` enforces it for a request; refusals (and allowed exports,
per the policy's record_allowed) are written to the trail by the access app's enforcement.
"""

from __future__ import annotations

READ, EXPORT = "read", "export"
DENIAL_MESSAGES = {
    READ: "The access policy does not let your role read the decision trail.",
    EXPORT: "The access policy does not let your role export the decision trail.",
}


def _allowed(user, action: str, chain: str) -> bool:
    if user is None or not user.is_authenticated:
        return False
    from access.decisions import decide

    return decide(user, action, f"trail:{chain}").allowed


def can_read_trail(user, chain: str = "suite") -> bool:
    return _allowed(user, READ, chain)


def can_export_trail(user, chain: str = "suite") -> bool:
    return _allowed(user, EXPORT, chain)


def check_trail_access(request, *, action: str, chain: str = "suite") -> bool:
    """Whether the request's user may `action` ("read" or "export") the trail; a refusal is trailed.

    Anonymous requests are refused without an event: they are sent to log in, not denied.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    from access.decisions import decide
    from access.enforcement import trail_decision
    from access.resources import resource_for
    from audit.actors import actor_from_request

    target = resource_for(f"trail:{chain if chain != '*' else 'suite'}")
    decision = decide(user, action, target)
    if not decision.allowed:  # an allowed export is trailed by the export itself, with its range
        trail_decision(decision, target=target, actor=actor_from_request(request),
                       context={"method": request.method, "path": request.path})  # fmt: skip
    return decision.allowed
