from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods
from django.views.defaults import server_error

from accounts.roles import Role
from portal.homes import ROLE_HOMES, panels_for
from portal.navigation import items_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = request.user.primary_role
    if role is None:
        return render(request, "portal/no_role.html", status=200)
    return redirect("portal:role_home", role=role.value)


@login_required
def role_home(request: HttpRequest, role: str) -> HttpResponse:
    try:
        role_enum = Role(role)
    except ValueError:
        raise Http404("No such role.") from None
    if not request.user.has_role(role_enum):
        from audit.actors import actor_from_request
        from audit.services import record

        record(
            actor=actor_from_request(request),
            action="portal.role_home",
            resource_type="portal",
            resource_id=f"home:{role_enum.value}",
            outcome="denied",
            payload={"reason": f"the account lacks the role {role_enum.value}", "path": request.path},
        )
        raise PermissionDenied(
            f"This page is for the {role_enum.label} role, which your account does not have."
        )
    context = {
        "role": role_enum,
        "summary": ROLE_HOMES[role_enum],
        "cards": [item for item in items_for(request.user) if item["description"]],
        "other_roles": [r for r in request.user.roles if r != role_enum],
        "panels": panels_for(request.user),
    }
    return render(request, "portal/home.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def api_token(request: HttpRequest) -> HttpResponse:
    """The user's own API tokens: issue (key shown once), list, revoke. Hashed at rest (accounts.tokens)."""
    from accounts.tokens import token_issue, token_revoke, tokens_of

    new_key = None
    if request.method == "POST":
        if request.POST.get("revoke"):
            token_revoke(user=request.user, token_prefix=request.POST["revoke"][:64])
        else:
            _instance, new_key = token_issue(user=request.user)
    response = render(
        request, "portal/api_token.html", {"new_key": new_key, "tokens": list(tokens_of(user=request.user))}
    )
    response["Cache-Control"] = "no-store"
    return response


def _api_error(request: HttpRequest, status: int, message: str) -> JsonResponse | None:
    """API clients get a JSON error body, never an HTML page: DRF's shape under /api/, OpenAI's under /v1/."""
    if request.path.startswith("/v1/"):
        kind = {404: "not_found_error", 403: "permission_error"}.get(
            status, "server_error" if status >= 500 else "invalid_request_error"
        )
        return JsonResponse(
            {"error": {"message": message, "type": kind, "param": None, "code": status}}, status=status
        )
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return None


def error_403(request: HttpRequest, exception=None) -> HttpResponse:
    message = str(exception) if exception and str(exception) else ""
    return _api_error(request, 403, message or "The access policy does not allow this.") or render(
        request, "403.html", {"message": message}, status=403
    )


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    return _api_error(request, 404, "Not found.") or render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    api = _api_error(
        request, 500, "Internal error; it has been logged. Please retry or contact the administrator."
    )
    return api or server_error(request)  # Django's: no context processors, which may be what failed
