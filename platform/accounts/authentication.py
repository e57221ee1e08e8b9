from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header


class ApiTokenAuthentication(BaseAuthentication):
    """API tokens in `Authorization: Token <key>` or `Bearer <key>` (as OpenAI-compatible clients send).

    Only knox tokens are accepted: hashed at rest, expiring (accounts.tokens). The plaintext
    `rest_framework.authtoken` table is gone (accounts migration 0003 drops it).
    """

    _knox = KnoxTokenAuthentication()

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
