import binascii
from hmac import compare_digest

from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


class _KnoxTokens(KnoxTokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        """knox's check (each token under the key's prefix: expiry, then the digest, then the user),
        with the user's group names read by the same query: the policy's roles (User.role_names)
        then need no query of their own on an API call."""
        message = _("Invalid token.")
        key = token.decode("utf-8")
        rows = (
            get_token_model()
            .objects.filter(token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH])
            .select_related("user")
            .annotate(_group_name=F("user__groups__name"))  # one row per group (LEFT JOIN)
        )
        candidates: dict[str, tuple[object, set[str]]] = {}
        for row in rows:
            names = candidates.setdefault(row.digest, (row, set()))[1]
            if row._group_name is not None:
                names.add(row._group_name)
        for auth_token, names in candidates.values():
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(key)
            except (TypeError, binascii.Error) as error:
                raise exceptions.AuthenticationFailed(message) from error
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                auth_token.user._role_names = names  # User.role_names' per-instance cache
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)

    def _cleanup_token(self, auth_token) -> bool:
        """Only the presented token's own expiry. knox also reads and deletes the user's other expired
        tokens here, a second query on every API call; an expired token is refused (and deleted) when
        it is presented, and accounts.tokens.token_issue sweeps the user's expired ones."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False


class ApiTokenAuthentication(BaseAuthentication):
    """API tokens in `Authorization: Token <key>` or `Bearer <key>` (as OpenAI-compatible clients send).

    Only knox tokens are accepted: hashed at rest, expiring (accounts.tokens). The plaintext
    `rest_framework.authtoken` table is gone (accounts migration 0003 drops it).
    """

    _knox = _KnoxTokens()

    def authenticate(self, request):
        scheme, _, key = get_authorization_header(request).partition(b" ")
        if scheme.lower() not in (b"bearer", b"token"):
            return None
        key = key.strip()
        if not key:
            raise exceptions.AuthenticationFailed("Invalid token header: no token after the scheme.")
        if b" " in key:
            raise exceptions.AuthenticationFailed("Invalid token header: the token must not contain spaces.")
        return self._knox.authenticate_credentials(key)

    def authenticate_header(self, request):
        return "Bearer"
