"""REST API of the finance app, mounted at /api/finance/ (namespace "finance_api")."""

from django.urls import path

from finance.api import alerts, cases, sars, scenarios, transactions

app_name = "finance_api"

urlpatterns = [
    path("transactions/batch/", transactions.TransactionBatchApi.as_view(), name="transaction-batch"),
    path("transactions/screen/", transactions.TransactionScreenApi.as_view(), name="transaction-screen"),
    path("alerts/", alerts.AlertListApi.as_view(), name="alert-list"),
    path("alerts/assign/", alerts.AlertAssignApi.as_view(), name="alert-assign"),
    path("alerts/<int:pk>/", alerts.AlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<int:pk>/replay/", alerts.AlertReplayApi.as_view(), name="alert-replay"),
    path("alerts/<int:pk>/whitelist/", alerts.AlertWhitelistApi.as_view(), name="alert-whitelist"),
    path("cases/<int:pk>/", cases.CaseDetailApi.as_view(), name="case-detail"),
    path("cases/<int:pk>/notes/", cases.CaseNoteApi.as_view(), name="case-note"),
    path("cases/<int:pk>/attachments/", cases.CaseAttachmentApi.as_view(), name="case-attach"),
    path("cases/<int:pk>/disposition/", cases.CaseDispositionApi.as_view(), name="case-disposition"),
    path("cases/<int:pk>/close/approve/", cases.CaseCloseApproveApi.as_view(), name="case-close-approve"),
    path("cases/<int:pk>/sar/", sars.CaseSarDraftApi.as_view(), name="case-sar"),
    path("sars/<int:pk>/", sars.SarDetailApi.as_view(), name="sar-detail"),
    path("sars/<int:pk>/approve/", sars.SarApproveApi.as_view(), name="sar-approve"),
    path("sars/<int:pk>/goaml.xml", sars.SarExportApi.as_view(), name="sar-export"),
    path("scenarios/", scenarios.ScenarioListApi.as_view(), name="scenario-list"),
    path("scenarios/<int:pk>/approve/", scenarios.ScenarioApproveApi.as_view(), name="scenario-approve"),
    path("scenarios/<int:pk>/shadow/", scenarios.ScenarioShadowApi.as_view(), name="scenario-shadow"),
]
