"""/metrics, mounted by the composition root with include() (suite.urls names no view of this layer)."""

from django.urls import path

from inference.views_metrics import prometheus

urlpatterns = [path("metrics", prometheus, name="metrics")]
