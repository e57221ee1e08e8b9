"""Writes behind the portal's own pages, each trailed in the same transaction as its effect."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from audit.actors import actor_from_request
from audit.services import record
from portal.selectors import ADDRESS, AGENT, SIGNED_IN_AT, user_sessions


def sessions_end_others(*, user, request) -> int:
    """Sign the user out of every session but the request's own. Returns how many ended."""
    current = request.session.session_key
    with transaction.atomic():
        others = [session for session, _data in user_sessions(user=user) if session.session_key != current]
        for session in others:
            session.delete()
        record(
            actor=actor_from_request(request),
            action="account.sessions_end",
            resource_type="user",
            resource_id=user.get_username(),
            outcome="succeeded",
            payload={"ended": len(others)},
        )
    return len(others)


def session_mark_signed_in(*, request) -> None:
    """Note when, from where and with what browser this session signed in (sessions page)."""
    request.session[SIGNED_IN_AT] = timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    request.session[ADDRESS] = request.META.get("REMOTE_ADDR", "")[:64]
    request.session[AGENT] = request.META.get("HTTP_USER_AGENT", "")[:160]
