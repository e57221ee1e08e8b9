"""Authentication events on the trail: logins, logouts and failed logins (never the password)."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from audit.services import record

_USER_AGENT_LIMIT = 200


def _client(request) -> dict:
    if request is None:
        return {}
    return {
        "ip": request.META.get("REMOTE_ADDR", ""),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:_USER_AGENT_LIMIT],
    }


def trail_login(sender, request, user, **kwargs) -> None:
    record(
        actor=user,
        action="auth.login",
        resource_type="user",
        resource_id=user.pk,
        outcome="succeeded",
        payload=_client(request),
    )


def trail_logout(sender, request, user, **kwargs) -> None:
    # user is None when the session had already expired: nobody to name, nothing to record.
    if user is None:
        return
    record(
        actor=user,
        action="auth.logout",
        resource_type="user",
        resource_id=user.pk,
        outcome="succeeded",
        payload=_client(request),
    )


def trail_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # Only the attempted user name is kept from the credentials: never the password, whatever
    # the other keys hold (Django already masks sensitive ones, but we do not rely on that).
    username_field = get_user_model().USERNAME_FIELD
    attempted = str(credentials.get(username_field) or credentials.get("username") or "")[:150]
    record(
        actor=None,
        action="auth.login_failed",
        resource_type="user",
        resource_id=attempted,
        outcome="failed",
        payload={"username": attempted, **_client(request)},
    )


def trail_lockout(sender, request=None, username=None, ip_address=None, **kwargs) -> None:
    # django-axes locked an account or an address after repeated failures.
    attempted = str(username or "")[:150]
    record(
        actor=None,
        action="auth.lockout",
        resource_type="user",
        resource_id=attempted,
        outcome="denied",
        payload={"username": attempted, "ip": str(ip_address or ""), **_client(request)},
    )


def trail_key_event(*, action: str, resource_type: str, resource_id: str, payload: dict) -> None:
    """A key the vault created or rotated (vault.keys.on_key_event: the vault, below, imports no trail)."""
    record(
        actor="system:vault",
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome="succeeded",
        payload=payload,
    )
