"""The model registry's REST API, mounted at /api/models/ (the OpenAI-compatible API is /v1/)."""

from django.urls import path

from inference import api

app_name = "inference_api"

urlpatterns = [
    path("", api.ModelRegistryApi.as_view(), name="model-registry"),
]
