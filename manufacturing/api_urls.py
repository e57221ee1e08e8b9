"""REST API of the manufacturing app, mounted at /api/manufacturing/ (namespace "manufacturing_api")."""

from django.urls import path

from manufacturing import api

app_name = "manufacturing_api"

urlpatterns = [
    path("work-orders/", api.WorkOrderListApi.as_view(), name="work-order-list"),
    path("work-orders/<int:pk>/", api.WorkOrderDetailApi.as_view(), name="work-order-detail"),
    path(
        "work-orders/<int:pk>/transition/", api.WorkOrderTransitionApi.as_view(), name="work-order-transition"
    ),
    path("recordings/", api.RecordingUploadApi.as_view(), name="recording-upload"),
]
