"""Compliance officer portal, mounted at /finance/ (namespace "finance")."""

from django.urls import path

from finance import views

app_name = "finance"

urlpatterns = [
    path("", views.alert_queue, name="alert_queue"),
    path("alerts/assign/", views.alert_assign, name="alert_assign"),
    path("alerts/<int:pk>/", views.alert_detail, name="alert_detail"),
    path("cases/<int:pk>/", views.case_detail, name="case_detail"),
    path("cases/<int:pk>/attachments/<int:attachment_pk>/", views.attachment_download, name="attachment"),
    path("sars/<int:pk>/", views.sar_detail, name="sar_detail"),
    path("sars/<int:pk>/print/", views.sar_print, name="sar_print"),
    path("sars/<int:pk>/goaml.xml", views.sar_xml, name="sar_xml"),
    path("scenarios/", views.scenarios, name="scenarios"),
]
