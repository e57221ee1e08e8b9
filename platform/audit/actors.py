"""Who acted: a user, a user through an API token, a system component, or nobody signed in."""

from __future__ import annotations

import re
from dataclasses import dataclass

from knox.models import AuthToken

from audit.models import ActorKind

# System actors name their component: "task:tuning.run_job", "scp:SUITE", "system:vault".
SYSTEM_ACTOR_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*:\S{1,200}$")
ANONYMOUS_LABEL = "anonymous"


@dataclass(frozen=True)
class ResolvedActor:
    kind: str
    label: str
    user: object | None = None


def resolve_actor(actor: object) -> ResolvedActor:
    """Accepts a User, an API token (knox AuthToken), None / AnonymousUser, or a "component:name" string."""
    if actor is None or getattr(actor, "is_anonymous", False):
        return ResolvedActor(ActorKind.ANONYMOUS, ANONYMOUS_LABEL)
    if isinstance(actor, str):
        if not SYSTEM_ACTOR_PATTERN.match(actor):
            raise ValueError(
                f"System actor {actor!r} must look like 'component:name', e.g. 'task:tuning.run_job' or "
                "'system:vault'. Pass the User object for people."
            )
        return ResolvedActor(ActorKind.SYSTEM, actor)
    if _is_token(actor):
        # The label is the user's name, never the token key (a secret).
        return ResolvedActor(ActorKind.TOKEN, actor.user.get_username(), actor.user)
    if hasattr(actor, "get_username") and getattr(actor, "is_authenticated", False):
        return ResolvedActor(ActorKind.USER, actor.get_username(), actor)
    raise TypeError(
        f"Cannot record {type(actor).__name__} as an actor: pass a User, an API Token, None for anonymous, "
        "or a 'component:name' string."
    )


def actor_from_request(request) -> object:
    """The actor behind an HTTP request: its API token when DRF authenticated one, else its user."""
    auth = getattr(request, "auth", None)
    return auth if _is_token(auth) else getattr(request, "user", None)


def _is_token(value: object) -> bool:
    return isinstance(value, AuthToken)
