from django.urls import path

from access import views

app_name = "access"

urlpatterns = [
    path("explain/", views.explain_page, name="explain"),
    path("approvals/", views.approvals_page, name="approvals"),
]
