"""OpenAPI: how API tokens are sent (drf-spectacular extension for accounts.authentication)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from POST /api/auth/token/: `Authorization: Bearer <key>` "
            "(or `Token <key>`). Hashed at rest, expiring.",
        }
