from django.urls import path

from inference.tuning import api

urlpatterns = [
    path("data-adapters/", api.DataAdapterListApi.as_view(), name="tuning-api-data-adapters"),
    path("jobs/", api.JobListCreateApi.as_view(), name="tuning-api-jobs"),
    path("jobs/<int:pk>/", api.JobDetailApi.as_view(), name="tuning-api-job"),
    path("jobs/<int:pk>/cancel/", api.JobCancelApi.as_view(), name="tuning-api-job-cancel"),
    path("jobs/<int:pk>/retry/", api.JobRetryApi.as_view(), name="tuning-api-job-retry"),
    path("adapters/", api.AdapterListApi.as_view(), name="tuning-api-adapters"),
    path("adapters/<int:pk>/promote/", api.AdapterPromoteApi.as_view(), name="tuning-api-adapter-promote"),
    path("adapters/<int:pk>/demote/", api.AdapterDemoteApi.as_view(), name="tuning-api-adapter-demote"),
]
