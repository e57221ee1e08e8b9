from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header


class ApiTokenAuthentication(TokenAuthentication):
    """API tokens in `Authorization: Token <key>` or `Bearer <key>` (as OpenAI-compatible clients send).

    Tokens issued by Suite are knox tokens, hashed at rest and expiring (accounts.tokens). Legacy
    rest_framework.authtoken keys are still accepted until their table is retired.
    """

    _knox = KnoxTokenAuthentication()

    def authenticate(self, request):
        scheme, _, key = get_authorization_header(request).partition(b" ")
        if scheme.lower() not in (b"bearer", b"token") or not key.strip():
            return super().authenticate(request) if scheme.lower() == b"token" else None
        key = key.strip()
        if b" " in key:
            raise exceptions.AuthenticationFailed("Invalid token header: the token must not contain spaces.")
        try:
            return self._knox.authenticate_credentials(key)
        except exceptions.AuthenticationFailed:
            pass
        try:
            return self.authenticate_credentials(key.decode())
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token.") from None

    def authenticate_header(self, request):
        return "Bearer"
