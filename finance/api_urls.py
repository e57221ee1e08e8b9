"""REST API of the finance app, mounted at /api/finance/ (namespace "finance_api")."""

from django.urls import path

from finance import api

app_name = "finance_api"

urlpatterns = [
    path("transactions/batch/", api.TransactionBatchApi.as_view(), name="transaction-batch"),
    path("transactions/screen/", api.TransactionScreenApi.as_view(), name="transaction-screen"),
    path("alerts/", api.AlertListApi.as_view(), name="alert-list"),
    path("alerts/assign/", api.AlertAssignApi.as_view(), name="alert-assign"),
    path("alerts/<int:pk>/", api.AlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<int:pk>/replay/", api.AlertReplayApi.as_view(), name="alert-replay"),
    path("alerts/<int:pk>/whitelist/", api.AlertWhitelistApi.as_view(), name="alert-whitelist"),
    path("cases/<int:pk>/", api.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<int:pk>/notes/", api.CaseNoteApi.as_view(), name="case-note"),
    path("cases/<int:pk>/attachments/", api.CaseAttachmentApi.as_view(), name="case-attach"),
    path("cases/<int:pk>/disposition/", api.CaseDispositionApi.as_view(), name="case-disposition"),
    path("cases/<int:pk>/close/approve/", api.CaseCloseApproveApi.as_view(), name="case-close-approve"),
    path("cases/<int:pk>/sar/", api.CaseSarDraftApi.as_view(), name="case-sar"),
    path("sars/<int:pk>/", api.SarDetailApi.as_view(), name="sar-detail"),
    path("sars/<int:pk>/approve/", api.SarApproveApi.as_view(), name="sar-approve"),
    path("sars/<int:pk>/goaml.xml", api.SarExportApi.as_view(), name="sar-export"),
    path("scenarios/", api.ScenarioListApi.as_view(), name="scenario-list"),
    path("scenarios/<int:pk>/approve/", api.ScenarioApproveApi.as_view(), name="scenario-approve"),
    path("scenarios/<int:pk>/shadow/", api.ScenarioShadowApi.as_view(), name="scenario-shadow"),
]
