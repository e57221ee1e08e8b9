"""/api/finance/he/: encrypted scoring for partner institutions."""

from django.urls import path

from finance.he import api

app_name = "finance_he_api"

urlpatterns = [
    path("model/", api.HeModelApi.as_view(), name="model"),
    path("keys/", api.HeKeyApi.as_view(), name="keys"),
    path("score/", api.HeScoreApi.as_view(), name="score"),
]
