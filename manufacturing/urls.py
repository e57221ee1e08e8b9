"""Maintenance portal pages, mounted at /manufacturing/ (namespace "manufacturing")."""

from django.urls import path

from manufacturing import views

app_name = "manufacturing"

urlpatterns = [
    path("", views.asset_list, name="asset_list"),
    path("assets/<int:pk>/", views.asset_detail, name="asset_detail"),
    path("offline-worker.js", views.offline_worker, name="offline_worker"),
    path("assets/<int:pk>/qr.svg", views.asset_qr, name="asset_qr"),
    path("assets/<int:pk>/label/", views.asset_label, name="asset_label"),
    path("assets/<int:pk>/recordings/", views.recording_upload, name="recording_upload"),
    path("assets/<int:pk>/inspect/", views.inspection_new, name="inspection_new"),
    path("assets/<int:pk>/plans/", views.maintenance_plan_add, name="maintenance_plan_add"),
    path("assets/<int:pk>/meter/", views.meter_reading_add, name="meter_reading_add"),
    path("plans/<int:pk>/edit/", views.maintenance_plan_edit, name="maintenance_plan_edit"),
    path("plans/<int:pk>/stop/", views.maintenance_plan_stop, name="maintenance_plan_stop"),
    path("work-orders/", views.work_order_list, name="work_order_list"),
    path("work-orders/new/", views.work_order_new, name="work_order_new"),
    path("work-orders/<int:pk>/", views.work_order_detail, name="work_order_detail"),
    path("work-orders/<int:pk>/transition/", views.work_order_transition, name="work_order_transition"),
    path("work-orders/<int:pk>/plan/", views.work_order_plan, name="work_order_plan"),
    path("work-orders/<int:pk>/attachments/", views.work_order_attachment_add, name="work_order_attach"),
    path("work-orders/<int:pk>/suggest/", views.work_order_suggest, name="work_order_suggest"),
    path("work-orders/<int:pk>/report/", views.work_order_report, name="work_order_report"),
    path("attachments/<int:pk>/", views.attachment_download, name="attachment"),
    path("suggestions/<int:pk>/review/", views.suggestion_verdict, name="suggestion_review"),
]
