"""Reads behind the portal's own pages, scoped to the acting user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.sessions.models import Session
from django.utils import timezone

# Written into the session at sign-in (portal.wiring: user_logged_in), shown on the sessions page.
SIGNED_IN_AT, ADDRESS, AGENT = "portal_signed_in_at", "portal_address", "portal_agent"


@dataclass(frozen=True)
class SessionRow:
    key_hint: str  # the last characters of the key: enough to tell sessions apart, useless to an attacker
    signed_in_at: str
    address: str
    agent: str
    expires: datetime
    current: bool


def user_sessions(*, user) -> list[tuple[Session, dict]]:
    """The user's unexpired sessions with their decoded data (database sessions, Django's default)."""
    found = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).order_by("-expire_date"):
        data = session.get_decoded()
        if data.get("_auth_user_id") == str(user.pk):
            found.append((session, data))
    return found


def sessions_of(*, user, current_key: str | None) -> list[SessionRow]:
    return [
        SessionRow(
            key_hint=session.session_key[-6:],
            signed_in_at=data.get(SIGNED_IN_AT, ""),
            address=data.get(ADDRESS, ""),
            agent=data.get(AGENT, ""),
            expires=session.expire_date,
            current=session.session_key == current_key,
        )
        for session, data in user_sessions(user=user)
    ]
