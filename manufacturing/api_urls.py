"""REST API of the manufacturing app, mounted at /api/manufacturing/ (namespace "manufacturing_api")."""

from django.urls import path

from manufacturing.api import assets, assistant, health, work_orders

app_name = "manufacturing_api"

urlpatterns = [
    path("work-orders/", work_orders.WorkOrderListApi.as_view(), name="work-order-list"),
    path("work-orders/<int:pk>/", work_orders.WorkOrderDetailApi.as_view(), name="work-order-detail"),
    path(
        "work-orders/<int:pk>/transition/",
        work_orders.WorkOrderTransitionApi.as_view(),
        name="work-order-transition",
    ),
    path("work-orders/<int:pk>/plan/", work_orders.WorkOrderPlanApi.as_view(), name="work-order-plan"),
    path("work-orders/<int:pk>/suggest/", assistant.WorkOrderSuggestApi.as_view(), name="work-order-suggest"),
    path(
        "work-orders/<int:pk>/attachments/",
        work_orders.WorkOrderAttachmentApi.as_view(),
        name="work-order-attach",
    ),
    path("suggestions/<int:pk>/review/", assistant.SuggestionReviewApi.as_view(), name="suggestion-review"),
    path("recordings/", assets.RecordingUploadApi.as_view(), name="recording-upload"),
    path("recordings/<int:pk>/", health.RecordingDetailApi.as_view(), name="recording-detail"),
    path("assets/", health.AssetListApi.as_view(), name="asset-list"),
    path("assets/<int:pk>/", health.AssetDetailApi.as_view(), name="asset-detail"),
    path("assets/<int:pk>/recordings/", health.AssetRecordingsApi.as_view(), name="asset-recordings"),
    path("assets/<int:pk>/condition/", assets.ConditionAppendApi.as_view(), name="condition-append"),
    path("assets/<int:pk>/plans/", assets.MaintenancePlanApi.as_view(), name="maintenance-plans"),
    path("plans/<int:pk>/", assets.MaintenancePlanDetailApi.as_view(), name="maintenance-plan"),
    path("assets/<int:pk>/scans/", assets.ScanCompareApi.as_view(), name="scan-compare"),
    path("scans/<int:pk>/", assets.ScanDetailApi.as_view(), name="scan-detail"),
    path("assets/<int:pk>/meter/", assets.MeterReadingApi.as_view(), name="meter-reading"),
]
