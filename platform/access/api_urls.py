from django.urls import re_path

from access import api

app_name = "access_api"

urlpatterns = [
    re_path(r"^explain/?$", api.ExplainApi.as_view(), name="explain"),
]
