"""Portal enforcement: a class-based view mixin and a function view decorator.

    class StudyDetail(PolicyRequiredMixin, DetailView):
        policy_action = "view"            # the object from get_object() is decided

    class TrailHome(PolicyRequiredMixin, TemplateView):
        policy_action = "read"
        policy_resource = "trail:suite"   # or callable(request, view)

    @policy_required("explain", "policy:suite")
    def explain(request): ...

Anonymous users are sent to log in. A denial raises access.PolicyDenied (403 through the
project's handler403) after it is trailed. List views (MultipleObjectMixin) are filtered with
access.querysets.restrict, so they never load rows the user may not see.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.views import redirect_to_login
from django.views.generic.list import MultipleObjectMixin

from access.decisions import decide
from access.enforcement import trail_decision
from access.errors import PolicyDenied
from access.querysets import restrict
from access.resources import resource_for
from audit.actors import actor_from_request


def enforce_for_request(request, action: str, resource, *, record_allowed: bool = False):
    """Decide for the request's user, trail as needed, raise PolicyDenied on denial."""
    target = resource_for(resource)
    decision = decide(request.user, action, target)
    trail_decision(
        decision,
        target=target,
        actor=actor_from_request(request),
        record_allowed=record_allowed,
        context={"method": request.method, "path": request.path},
    )
    if not decision.allowed:
        raise PolicyDenied(decision)
    return decision


class PolicyRequiredMixin(AccessMixin):
    policy_action: str = ""
    policy_resource = None  # "type:name", Resource, or callable(request, view); None: decide per object
    policy_record_allowed = False

    def get_policy_resource(self):
        resource = self.policy_resource
        return resource(self.request, self) if callable(resource) else resource

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.policy_action:
            raise TypeError(f"{type(self).__name__} needs a policy_action.")
        resource = self.get_policy_resource()
        if resource is not None:
            enforce_for_request(
                request, self.policy_action, resource, record_allowed=self.policy_record_allowed
            )
        return super().dispatch(request, *args, **kwargs)

    def get_object(self, queryset=None):
        obj = super().get_object(queryset)
        enforce_for_request(self.request, self.policy_action, obj, record_allowed=self.policy_record_allowed)
        return obj

    def get_queryset(self):
        queryset = super().get_queryset()
        if isinstance(self, MultipleObjectMixin):
            return restrict(queryset, self.request.user, self.policy_action)
        return queryset


def policy_required(action: str, resource: str | Callable, *, record_allowed: bool = False):
    """Function-view decorator. `resource` is "type:name" or callable(request, *args, **kwargs)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            target = resource(request, *args, **kwargs) if callable(resource) else resource
            enforce_for_request(request, action, target, record_allowed=record_allowed)
            return view(request, *args, **kwargs)

        if isinstance(resource, str):
            wrapper.page_policy = (action, resource)  # read by page_policy_of (the menu)
        return wrapper

    return decorator


def page_policy_of(view) -> tuple[str, str] | None:
    """The (action, "type:name") a page view decides before it answers anything, as declared by
    @policy_required or PolicyRequiredMixin; None when it declares none (or decides per object).

    The portal's menu asks the policy this same question, so it offers a page exactly when the
    page would answer (one check, shared by the menu and the view).
    """
    declared = getattr(view, "page_policy", None)
    if declared:
        return declared
    view_class = getattr(view, "view_class", None)
    if view_class is not None and issubclass(view_class, PolicyRequiredMixin):
        resource = view_class.policy_resource
        if view_class.policy_action and isinstance(resource, str):
            return (view_class.policy_action, resource)
    return None
