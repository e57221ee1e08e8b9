"""The project's URLs plus the access app's (until suite/urls.py mounts them at /access/ and
/api/access/), and small probe views that use each enforcement point the way product code does."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.generic import DetailView, ListView
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from access.drf import PolicyPermission, PolicyQuerysetMixin
from access.web import PolicyRequiredMixin, policy_required
from accounts.models import User
from suite.urls import handler403, handler404  # noqa: F401
from suite.urls import urlpatterns as project_urlpatterns


class RecordSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["username", "department"]
        read_only_fields = ["username"]


class RecordListApi(PolicyQuerysetMixin, generics.ListAPIView):
    permission_classes = [PolicyPermission]
    policy_action = "view"
    queryset = User.objects.order_by("username")
    serializer_class = RecordSerializer
    pagination_class = None


class RecordDetailApi(generics.RetrieveUpdateAPIView):
    permission_classes = [PolicyPermission]
    policy_action = {"GET": "view", "PATCH": "manage"}
    queryset = User.objects.all()
    serializer_class = RecordSerializer


class UnscopedListApi(generics.ListAPIView):
    """A mistake: nothing would filter the rows."""

    permission_classes = [PolicyPermission]
    policy_action = "view"
    queryset = User.objects.all()
    serializer_class = RecordSerializer


class TrailExportProbeApi(APIView):
    permission_classes = [PolicyPermission]
    policy_action = "read"
    policy_resource = "trail:suite"
    policy_record_allowed = True

    def get(self, request):
        return Response({"ok": True})


class RecordPage(PolicyRequiredMixin, DetailView):
    policy_action = "view"
    model = User

    def render_to_response(self, context, **kwargs):
        return HttpResponse(f"record {self.object.username}")


class RecordListPage(PolicyRequiredMixin, ListView):
    policy_action = "view"
    model = User

    def render_to_response(self, context, **kwargs):
        return HttpResponse(" ".join(sorted(user.username for user in context["object_list"])))


@policy_required("read", lambda request, chain: f"trail:{chain}")
def trail_page(request, chain):
    return HttpResponse(f"trail {chain}")


probe_patterns = [
    path("api/records/", RecordListApi.as_view()),
    path("api/records/<int:pk>/", RecordDetailApi.as_view()),
    path("api/trail/", TrailExportProbeApi.as_view()),
    path("api/unscoped/", UnscopedListApi.as_view()),
    path("records/", RecordListPage.as_view()),
    path("records/<int:pk>/", RecordPage.as_view()),
    path("trail/<slug:chain>/", trail_page),
]

_mounted = {getattr(pattern, "app_name", None) for pattern in project_urlpatterns}
urlpatterns = [
    *([] if "access" in _mounted else [path("access/", include("access.urls"))]),
    *([] if "access_api" in _mounted else [path("api/access/", include("access.api_urls"))]),
    path("probe/", include(probe_patterns)),
    *project_urlpatterns,
]
