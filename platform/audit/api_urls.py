from django.urls import path

from audit import api

app_name = "audit_api"

urlpatterns = [
    path("events/", api.EventListApi.as_view(), name="event-list"),
    path("events/<int:pk>/", api.EventDetailApi.as_view(), name="event-detail"),
    path("verify/", api.TrailVerifyApi.as_view(), name="verify"),
    path("export/", api.TrailExportApi.as_view(), name="export"),
]
