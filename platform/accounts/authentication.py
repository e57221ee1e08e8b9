from django.utils import timezone
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.signals import token_expired
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


class _KnoxTokens(KnoxTokenAuthentication):
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
