"""Liveness and readiness probes for process supervisors and load balancers."""

from __future__ import annotations

from pathlib import Path

# The suite's Celery app (created when the settings package loads, suite/__init__), taken as the
# current app: ops sits below every layer and imports none of them.
from celery import current_app as app
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive and answering. Touches nothing else."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and the task broker are reachable. 503 otherwise."""
    checks = {"database": check_database(), "broker": check_broker()}
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


def check_database() -> dict:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
    return {"ok": True, "vendor": connections["default"].vendor}


def check_broker() -> dict:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for key in ("data_folder_in", "processed_folder"):
            folder = Path(options[key])
            if not folder.is_dir():
                return {"ok": False, "error": f"broker folder {folder} is missing"}
            probe = folder / ".readyz-probe"
            try:
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                return {"ok": False, "error": f"broker folder {folder} is not writable: {exc}"}
        return {"ok": True, "transport": "filesystem"}
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=2)
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}".strip()[:300]}
    return {"ok": True, "transport": url.split("://", 1)[0]}
