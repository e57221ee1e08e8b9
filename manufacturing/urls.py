"""Maintenance portal pages, mounted at /manufacturing/ (namespace "manufacturing")."""

from django.urls import path

from manufacturing.views import assets, offline, plans, recordings, scans, work_orders

app_name = "manufacturing"

urlpatterns = [
    path("", assets.asset_list, name="asset_list"),
    path("assets/<int:pk>/", assets.asset_detail, name="asset_detail"),
    path("offline-worker.js", offline.offline_worker, name="offline_worker"),
    path("assets/<int:pk>/qr.svg", assets.asset_qr, name="asset_qr"),
    path("assets/<int:pk>/label/", assets.asset_label, name="asset_label"),
    path("assets/<int:pk>/recordings/", assets.recording_upload, name="recording_upload"),
    path("recordings/<int:pk>/", recordings.recording_detail, name="recording_detail"),
    path("assets/<int:pk>/spectra/", recordings.spectra_over_time, name="spectra_over_time"),
    path("assets/<int:pk>/inspect/", assets.inspection_new, name="inspection_new"),
    path("assets/<int:pk>/plans/", plans.maintenance_plan_add, name="maintenance_plan_add"),
    path("assets/<int:pk>/meter/", plans.meter_reading_add, name="meter_reading_add"),
    path("assets/<int:pk>/scans/", scans.scan_upload, name="scan_upload"),
    path("scans/<int:pk>/", scans.scan_detail, name="scan_detail"),
    path("plans/<int:pk>/edit/", plans.maintenance_plan_edit, name="maintenance_plan_edit"),
    path("plans/<int:pk>/stop/", plans.maintenance_plan_stop, name="maintenance_plan_stop"),
    path("work-orders/", work_orders.work_order_list, name="work_order_list"),
    path("work-orders/new/", work_orders.work_order_new, name="work_order_new"),
    path("work-orders/<int:pk>/", work_orders.work_order_detail, name="work_order_detail"),
    path("work-orders/<int:pk>/transition/", work_orders.work_order_transition, name="work_order_transition"),
    path("work-orders/<int:pk>/plan/", work_orders.work_order_plan, name="work_order_plan"),
    path(
        "work-orders/<int:pk>/attachments/", work_orders.work_order_attachment_add, name="work_order_attach"
    ),
    path("work-orders/<int:pk>/suggest/", work_orders.work_order_suggest, name="work_order_suggest"),
    path("work-orders/<int:pk>/report/", work_orders.work_order_report, name="work_order_report"),
    path("attachments/<int:pk>/", work_orders.attachment_download, name="attachment"),
    path("suggestions/<int:pk>/review/", work_orders.suggestion_verdict, name="suggestion_review"),
]
