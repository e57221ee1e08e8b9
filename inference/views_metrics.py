from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.gates import signed_in_or_allow_listed
from inference import metrics


@never_cache
@require_GET
@signed_in_or_allow_listed
def prometheus(request: HttpRequest) -> HttpResponse:
    """Prometheus text exposition of the serving metrics of every web and worker process.

    Signed-in users and SUITE_OPEN_ENDPOINT_ADDRESSES (the site's Prometheus) only.
    """
    return HttpResponse(metrics.render(), content_type=metrics.CONTENT_TYPE)
