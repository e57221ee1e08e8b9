from csp.decorators import csp_update
from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts.api import IssueTokenView, MeView
from accounts.gates import signed_in_or_allow_listed as gated
from ops import health

_doc_page = csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})

api_patterns = [
    path("me/", MeView.as_view(), name="api-me"),
    path("auth/token/", IssueTokenView.as_view(), name="api-token"),
    path("schema/", gated(SpectacularAPIView.as_view()), name="api-schema"),
    # The split view serves Swagger UI's start-up script as a file (CSP: no inline script); the two
    # documentation pages may use inline styles, which their bundles inject.
    path(
        "docs/", gated(_doc_page(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))), name="api-docs"
    ),
    path("redoc/", gated(_doc_page(SpectacularRedocView.as_view(url_name="api-schema"))), name="api-redoc"),
]

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # pages name their icon; what a browser asks for on its own (the admin, a JSON page) goes there too
    path("favicon.ico", RedirectView.as_view(url=static("portal/favicon.svg"), permanent=True)),
    path("", include("inference.metrics_urls")),  # /metrics (gated like the API docs)
    path("admin/", admin.site.urls),
    path("v1/", include("inference.api_urls")),
    path("models/", include("inference.urls")),
    path("api/models/", include("inference.registry_api_urls")),
    path("audit/", include("audit.urls")),
    path("access/", include("access.urls")),
    path("api/access/", include("access.api_urls")),
    path("api/audit/", include("audit.api_urls")),
    path("api/", include(api_patterns)),
    path("medical/", include("medical.urls")),
    path("api/medical/", include("medical.api_urls")),
    path("manufacturing/", include("manufacturing.urls")),
    path("api/manufacturing/", include("manufacturing.api_urls")),
    path("api/finance/he/", include("finance.he.urls")),
    path("api/finance/", include("finance.api_urls")),
    path("finance/", include("finance.urls")),
    path("tuning/", include("inference.tuning.urls")),
    path("api/tuning/", include("inference.tuning.api_urls")),
    path("", include("portal.urls")),
]

handler403 = "portal.views.error_403"
handler404 = "portal.views.error_404"
handler500 = "portal.views.error_500"
