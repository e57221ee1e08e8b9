from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from inference import metrics


@require_GET
def prometheus(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of this process's serving metrics (scraped on the internal network)."""
    return HttpResponse(metrics.render(), content_type="text/plain; version=0.0.4; charset=utf-8")
