"""Alert queue (filter, sort, SLA), sealed attachments, escalation, the case graph."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from finance import services
from finance.models import Attachment, Case
from tests.finance.conftest import TEAM, structuring_rows

pytestmark = pytest.mark.django_db


def test_queue_filters_sorts_and_ages(client, screened, officer):
    risky = structuring_rows(prefix="Z", account="ACC-Z", start=1_700_100_000)[:3]
    risky[2]["dst_country"] = "KP"
    services.transactions_ingest(actor=officer, table=services.rows_validate(risky), team=TEAM)
    client.force_login(officer)
    rows = client.get("/api/finance/alerts/").json()
    assert [r["decision"] for r in rows] == ["hold", "review"]  # by risk
    assert [r["decision"] for r in client.get("/api/finance/alerts/?sort=age").json()] == ["review", "hold"]
    assert len(client.get("/api/finance/alerts/?decision=hold").json()) == 1
    assert len(client.get("/api/finance/alerts/?scenario=HIGH_RISK_JURISDICTION").json()) == 1
    assert rows[0]["sla"]["sla_hours"] == 4 and not rows[0]["sla"]["overdue"]
    page = client.get("/finance/?sort=risk")
    assert page.status_code == 200 and page.content.count(b'data-testid="alert-row"') == 2


def test_attachment_sealed_and_downloadable_escalation_and_graph(client, screened, officer):
    case = Case.objects.get()
    client.force_login(officer)
    upload = SimpleUploadedFile("kyc.txt", b"passport copy checked")
    response = client.post(f"/api/finance/cases/{case.pk}/attachments/", {"file": upload})
    assert response.status_code == 201
    attachment = Attachment.objects.get()
    assert b"passport" not in bytes(attachment.sealed) and attachment.size == 21
    download = client.get(f"/finance/cases/{case.pk}/attachments/{attachment.pk}/")
    assert download.content == b"passport copy checked"
    assert (
        client.post(
            f"/api/finance/cases/{case.pk}/disposition/",
            {"disposition": "escalate"},
            content_type="application/json",
        ).status_code
        == 400
    )  # a reason is required
    escalated = client.post(
        f"/api/finance/cases/{case.pk}/disposition/",
        {"disposition": "escalate", "reason": "large totals"},
        content_type="application/json",
    )
    assert escalated.json()["status"] == "escalated"
    page = client.get(f"/finance/cases/{case.pk}/")
    assert b'data-testid="case-graph"' in page.content and page.content.count(b"<line") == 3
