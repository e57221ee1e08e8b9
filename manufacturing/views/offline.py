"""The service worker that keeps the maintenance pages, and forms sent with no connection, on a phone."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render, resolve_url
from django.templatetags.static import static
from django.views.decorators.http import require_GET


@require_GET
def offline_worker(request: HttpRequest) -> HttpResponse:
    """The service worker that keeps the maintenance pages opened on a phone for when it has no
    connection (scope /manufacturing/; `?user=` names whose pages it keeps). Nothing in it is secret."""
    shell = [
        static(path)
        for path in (
            "portal/suite.css",
            "portal/suite.js",
            "portal/favicon.svg",
            "manufacturing/manufacturing.css",
        )
    ]
    response = render(
        request,
        "manufacturing/offline-worker.js",
        {
            "static_url": settings.STATIC_URL
            if settings.STATIC_URL.startswith("/")
            else "/" + settings.STATIC_URL,
            "shell": shell,
            "login_path": resolve_url(settings.LOGIN_URL),
        },
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"  # a new version reaches the phones at their next page
    return response
