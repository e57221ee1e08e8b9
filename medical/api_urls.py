"""REST API of the medical app, mounted at /api/medical/ (namespace "medical_api")."""

from django.urls import path

from medical import api

app_name = "medical_api"

urlpatterns = [
    path("studies/", api.StudyListApi.as_view(), name="study-list"),
    path("studies/upload/", api.StudyUploadApi.as_view(), name="study-upload"),
    path("studies/<int:pk>/", api.StudyDetailApi.as_view(), name="study-detail"),
    path("studies/<int:pk>/share/", api.StudyShareApi.as_view(), name="study-share"),
    path("studies/<int:pk>/share/<str:username>/", api.StudyUnshareApi.as_view(), name="study-unshare"),
    path("studies/<int:pk>/ask/", api.StudyAskApi.as_view(), name="study-ask"),
    path("studies/<int:pk>/questions/", api.StudyQuestionsApi.as_view(), name="study-questions"),
    path(
        "studies/<int:pk>/burned-in-review/", api.BurnedInReviewApi.as_view(), name="study-burned-in-review"
    ),
    path("instances/<int:pk>/preview/", api.InstancePreviewApi.as_view(), name="instance-preview"),
    path("instances/<int:pk>/frames/<int:index>/", api.InstanceFrameApi.as_view(), name="instance-frame"),
    path("instances/<int:pk>/break-glass/", api.BreakGlassApi.as_view(), name="instance-break-glass"),
]
