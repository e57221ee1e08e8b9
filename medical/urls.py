"""Clinician portal pages, mounted at /medical/ (namespace "medical")."""

from django.urls import path

from medical import views

app_name = "medical"

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("upload/", views.upload, name="upload"),
    path("studies/<int:pk>/", views.study_detail, name="study_detail"),
    path("studies/<int:pk>/share/", views.study_share, name="study_share"),
    path("studies/<int:pk>/unshare/", views.study_unshare, name="study_unshare"),
    path("studies/<int:pk>/burned-in-review/", views.burned_in_review, name="burned_in_review"),
    path("studies/<int:pk>/break-glass/", views.break_glass, name="break_glass"),
    path("instances/<int:pk>/preview.png", views.instance_preview, name="instance_preview"),
    path("instances/<int:pk>/frames/<int:index>.png", views.instance_frame, name="instance_frame"),
]
