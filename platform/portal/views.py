from __future__ import annotations

from dataclasses import replace

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_http_methods
from django.views.defaults import server_error

from access.enforcement import trail_denial
from access.errors import PolicyDenied
from access.resources import Resource
from access.web import enforce_for_request, policy_required
from accounts.roles import Role
from accounts.tokens import token_issue, token_revoke, tokens_of
from portal import selectors, services
from portal.homes import ROLE_HOMES, panels_for
from portal.navigation import items_for

ACCOUNT = "portal:account"  # every signed-in user's own account pages (policy rule portal_account)


def home_resource(role: Role) -> Resource:
    """A role's home page as the policy sees it: portal:home_<role>, open to holders of the role."""
    return Resource("portal", f"home_{role.value}", {"role": role.value})


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
    try:
        enforce_for_request(request, "view", home_resource(role_enum))  # trails a refusal
    except PolicyDenied as denied:
        reason = f"This page is for the {role_enum.label} role, which your account does not have."
        raise PolicyDenied(replace(denied.decision, reason=reason), trail=denied.trail) from None
    context = {
        "role": role_enum,
        "summary": ROLE_HOMES[role_enum],
        "cards": [item for item in items_for(request.user) if item["description"]],
        "other_roles": [r for r in request.user.roles if r != role_enum],
        "panels": panels_for(request.user),
        # The policy's certification codes in words ("board_certified" -> "board certified").
        "certifications": [code.replace("_", " ") for code in request.user.certifications or ()],
    }
    return render(request, "portal/home.html", context)


@require_http_methods(["GET", "POST"])
@policy_required("view", ACCOUNT)
def api_token(request: HttpRequest) -> HttpResponse:
    """The user's own API tokens: issue (key shown once), list, revoke. Hashed at rest (accounts.tokens)."""
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


password_change = policy_required("view", ACCOUNT)(
    auth_views.PasswordChangeView.as_view(
        template_name="portal/password_change.html", success_url=reverse_lazy("portal:password_changed")
    )
)


@policy_required("view", ACCOUNT)
def password_changed(request: HttpRequest) -> HttpResponse:
    messages.success(
        request, "Your password has been changed. Your other sessions stay signed in until they end."
    )
    return redirect("portal:sessions")


@require_http_methods(["GET", "POST"])
@policy_required("view", ACCOUNT)
def sessions(request: HttpRequest) -> HttpResponse:
    """The user's own signed-in sessions; sign out all the others at once."""
    if request.method == "POST":
        ended = services.sessions_end_others(user=request.user, request=request)
        messages.success(request, f"Signed out {ended} other session{'s' if ended != 1 else ''}.")
        return redirect("portal:sessions")
    rows = selectors.sessions_of(user=request.user, current_key=request.session.session_key)
    response = render(request, "portal/sessions.html", {"sessions": rows})
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
    """The page names what was checked (action and resource) and what the person can do instead."""
    trail_denial(exception)  # a service's denial whose transaction rolled back
    message = str(exception) if exception and str(exception) else ""
    decision = getattr(exception, "decision", None)  # PolicyDenied, or the trail's TrailDenied
    api = _api_error(request, 403, message or "The access policy does not allow this.")
    if api is not None:
        return api
    context = {
        "message": message,
        "checked_action": decision.action if decision is not None else "",
        "checked_resource": decision.resource if decision is not None else "",
        "alternatives": _alternatives(request),
    }
    return render(request, "403.html", context, status=403)


def _alternatives(request: HttpRequest) -> list[dict]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return [item for item in items_for(user) if not request.path.startswith(item["url"])]


def error_404(request: HttpRequest, exception=None) -> HttpResponse:
    trail_denial(exception)  # a resource hidden from someone the policy refused
    return _api_error(request, 404, "Not found.") or render(request, "404.html", status=404)


def error_500(request: HttpRequest) -> HttpResponse:
    api = _api_error(
        request, 500, "Internal error; it has been logged. Please retry or contact the administrator."
    )
    return api or server_error(request)  # Django's: no context processors, which may be what failed


class LogoutView(auth_views.LogoutView):
    """Sign out, and have the browser drop what it kept for this person: pages kept for a phone with no
    connection (service workers and their caches), drafts (localStorage), the HTTP cache. A shared
    phone keeps nothing for the next person. Browsers honour Clear-Site-Data on HTTPS and localhost;
    elsewhere portal/suite.js drops the drafts itself and no service worker runs (they need HTTPS too)."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache", "storage"'
        return response
