from django.urls import path

from inference.tuning import views

app_name = "tuning"

urlpatterns = [
    path("", views.job_list, name="job_list"),
    path("new/", views.job_create, name="job_create"),
    path("<int:pk>/", views.job_detail, name="job_detail"),
    path("<int:pk>/cancel/", views.job_cancel, name="job_cancel"),
    path("<int:pk>/retry/", views.job_retry, name="job_retry"),
    path("adapters/", views.adapter_list, name="adapter_list"),
    path("adapters/<int:pk>/promote/", views.adapter_promote, name="adapter_promote"),
    path("adapters/<int:pk>/demote/", views.adapter_demote, name="adapter_demote"),
]
