"""DRF enforcement: a permission class that asks the policy, and a mixin that filters lists by it.

    class StudyViewSet(PolicyQuerysetMixin, viewsets.ReadOnlyModelViewSet):
        permission_classes = [PolicyPermission]
        policy_action = "view"            # or {"GET": "view", "POST": "upload"}
        queryset = Study.objects.all()   # list: restricted; detail: has_object_permission

    class ModelPredictApi(APIView):
        permission_classes = [PolicyPermission]
        policy_action = "predict"
        policy_resource = lambda request, view: f"model:{request.data.get('model', '')}"

View attributes:
- policy_action: an action, or a mapping HTTP method -> action (methods it lacks are refused).
- policy_resource: a "type:name" string, a Resource, or callable(request, view) returning one;
  when set, it is decided before the view runs. Object views are decided per object.
- policy_record_allowed: also trail allowed decisions (sensitive endpoints).

Anonymous requests get 401 (DRF's NotAuthenticated) without a trail event; every denial of a
signed-in user is trailed (access.enforcement).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import BasePermission
from rest_framework.views import exception_handler as drf_exception_handler

from access.decisions import decide
from access.enforcement import trail_decision, trail_denial
from access.querysets import restrict
from access.resources import resource_for
from audit.actors import actor_from_request


def policy_action_for(request, view) -> str | None:
    action = getattr(view, "policy_action", None)
    if isinstance(action, dict):
        return action.get(request.method)
    return action


class PolicyPermission(BasePermission):
    message = "The access policy does not allow this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        action = policy_action_for(request, view)
        if action is None:
            self.message = f"{request.method} is not offered here."
            return False
        resource = getattr(view, "policy_resource", None)
        if callable(resource):
            resource = resource(request, view)
        if resource is None:
            _require_per_object_or_per_row_decision(view)
            return True
        return self._decide(request, view, action, resource)

    def has_object_permission(self, request, view, obj) -> bool:
        action = policy_action_for(request, view)
        return action is not None and self._decide(request, view, action, obj)

    def _decide(self, request, view, action: str, resource) -> bool:
        target = resource_for(resource)
        decision = decide(request.user, action, target)
        trail_decision(
            decision,
            target=target,
            actor=actor_from_request(request),
            record_allowed=getattr(view, "policy_record_allowed", False),
            context={"method": request.method, "path": request.path},
        )
        if not decision.allowed:
            self.message = decision.reason
        return decision.allowed


def _require_per_object_or_per_row_decision(view) -> None:
    """Without policy_resource the policy must still decide: on the object the view looks up
    (GenericAPIView.get_object) or on every row (PolicyQuerysetMixin). Anything else would serve
    unfiltered data, so it is a programming error, not a denial."""
    if isinstance(view, PolicyQuerysetMixin):
        return
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
    if hasattr(view, "get_object") and lookup in getattr(view, "kwargs", {}):
        return
    raise ImproperlyConfigured(
        f"{type(view).__name__} uses PolicyPermission without policy_resource: give it one, add "
        "PolicyQuerysetMixin (lists), or look up one object with get_object() (detail views)."
    )


class PolicyQuerysetMixin:
    """Restricts get_queryset() to the rows the policy lets the user `policy_action`."""

    def get_queryset(self):
        queryset = super().get_queryset()
        action = policy_action_for(self.request, self)
        if action is None:
            return queryset.none()
        return restrict(queryset, self.request.user, action)


def exception_handler(exc, context):
    """DRF's handler, after making sure a denial behind `exc` is on the trail: a service's denial
    rolled back with its transaction is written again (access.enforcement.trail_denial)."""
    trail_denial(exc)
    return drf_exception_handler(exc, context)
