"""Maintenance portal pages, mounted at /manufacturing/ (namespace "manufacturing")."""

from django.urls import path

from manufacturing import views

app_name = "manufacturing"

urlpatterns = [
    path("", views.asset_list, name="asset_list"),
    path("assets/<int:pk>/", views.asset_detail, name="asset_detail"),
    path("work-orders/<int:pk>/", views.work_order_detail, name="work_order_detail"),
    path("work-orders/<int:pk>/transition/", views.work_order_transition, name="work_order_transition"),
]
