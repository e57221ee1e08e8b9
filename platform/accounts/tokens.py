"""API tokens, hashed at rest (django-rest-knox): issued, listed and revoked by their owner, trailed.

The key is returned once, at issuance; the database keeps only its digest and an 8-character prefix.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

from audit.services import record


def token_issue(*, user, ttl: timedelta | None = None) -> tuple[AuthToken, str]:
    """A new token for `user`; returns (instance, key). The key is never stored nor trailed."""
    ttl = ttl or settings.REST_KNOX["TOKEN_TTL"]
    with transaction.atomic():
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()  # expired: never accepted
        instance, key = AuthToken.objects.create(user=user, expiry=ttl)
        record(
            actor=user,
            action="api_token.issue",
            resource_type="user",
            resource_id=user.pk,
            outcome="succeeded",
            payload={"token_prefix": instance.token_key, "expiry": instance.expiry.isoformat()},
        )
    return instance, key


def token_revoke(*, user, token_prefix: str) -> int:
    """Revoke the owner's tokens with this prefix; another user's tokens are never touched."""
    with transaction.atomic():
        deleted, _ = AuthToken.objects.filter(user=user, token_key=token_prefix).delete()
        record(
            actor=user,
            action="api_token.revoke",
            resource_type="user",
            resource_id=user.pk,
            outcome="succeeded" if deleted else "failed",
            payload={"token_prefix": token_prefix, "revoked": deleted},
        )
    return deleted


def tokens_of(*, user):
    """The owner's own tokens (prefix, created, expiry): never anyone else's, never a key."""
    return AuthToken.objects.filter(user=user).order_by("-created").only("token_key", "created", "expiry")
