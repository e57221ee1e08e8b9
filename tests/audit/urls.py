"""The project's URLs plus the trail's, until suite/urls.py mounts them at /audit/ and /api/audit/."""

from django.urls import include, path

from suite.urls import handler403, handler404  # noqa: F401
from suite.urls import urlpatterns as project_urlpatterns

_mounted = {getattr(pattern, "app_name", None) for pattern in project_urlpatterns}
urlpatterns = [
    *([] if "audit" in _mounted else [path("audit/", include("audit.urls"))]),
    *([] if "audit_api" in _mounted else [path("api/audit/", include("audit.api_urls"))]),
    *project_urlpatterns,
]
