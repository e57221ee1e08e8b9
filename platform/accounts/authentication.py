from rest_framework.authentication import TokenAuthentication, get_authorization_header


class ApiTokenAuthentication(TokenAuthentication):
    """DRF token auth that also accepts `Authorization: Bearer <token>`, as OpenAI-compatible clients send."""

    def authenticate(self, request):
        scheme, _, key = get_authorization_header(request).partition(b" ")
        if scheme.lower() == b"bearer" and key.strip():
            try:
                return self.authenticate_credentials(key.strip().decode())
            except UnicodeDecodeError:
                return None
        return super().authenticate(request)

    def authenticate_header(self, request):
        return "Bearer"
