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
    path("work-orders/<int:pk>/plan/", api.WorkOrderPlanApi.as_view(), name="work-order-plan"),
    path("work-orders/<int:pk>/suggest/", api.WorkOrderSuggestApi.as_view(), name="work-order-suggest"),
    path("work-orders/<int:pk>/attachments/", api.WorkOrderAttachmentApi.as_view(), name="work-order-attach"),
    path("suggestions/<int:pk>/review/", api.SuggestionReviewApi.as_view(), name="suggestion-review"),
    path("recordings/", api.RecordingUploadApi.as_view(), name="recording-upload"),
    path("assets/<int:pk>/condition/", api.ConditionAppendApi.as_view(), name="condition-append"),
    path("assets/<int:pk>/plans/", api.MaintenancePlanApi.as_view(), name="maintenance-plans"),
    path("plans/<int:pk>/", api.MaintenancePlanDetailApi.as_view(), name="maintenance-plan"),
    path("assets/<int:pk>/meter/", api.MeterReadingApi.as_view(), name="meter-reading"),
]
