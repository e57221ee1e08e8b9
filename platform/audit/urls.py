from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.event_list, name="event_list"),
    path("events/<int:pk>/", views.event_detail, name="event_detail"),
    path("verify/", views.trail_verify, name="verify"),
    path("export/", views.trail_export, name="export"),
]
