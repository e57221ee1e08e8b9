"""Officers' portal forms keep what was typed when the service refuses it: the page comes back (400)
with the reason and the officer's own text to correct, never an emptied form; nothing is stored."""

from __future__ import annotations

import pytest

from finance.models import SAR, Case, ScenarioVersion
from finance.services import sar as sar_services

pytestmark = pytest.mark.django_db


def test_a_refused_sar_edit_comes_back_with_the_officers_text(client, screened, officer):
    sar = sar_services.sar_draft(actor=officer, case=Case.objects.get(), use_model=False)
    client.force_login(officer)
    edited = "The account split its payments into three to stay under the reporting threshold."
    response = client.post(f"/finance/sars/{sar.pk}/", {"action": "edit", "text": edited})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Every sentence must cite" in body and f">{edited}</textarea>" in body
    assert SAR.objects.get().text == sar.text and SAR.objects.get().editors == sar.editors


def test_a_refused_closing_keeps_the_disposition_and_reason(client, screened, officer):
    case = Case.objects.get()
    client.force_login(officer)
    response = client.post(
        f"/finance/cases/{case.pk}/",
        {"action": "prepare_close", "disposition": "sar_filed", "reason": "Filed with the FIU on paper"},
    )
    body = response.content.decode()
    assert response.status_code == 400 and "A SAR must be drafted and approved" in body
    assert '<option value="sar_filed" selected>' in body and 'value="Filed with the FIU on paper"' in body
    case.refresh_from_db()
    assert case.status != Case.Status.PENDING_CLOSE and case.disposition == ""


def test_a_refused_scenario_proposal_keeps_code_parameters_and_note(client, officer):
    client.force_login(officer)
    response = client.post(
        "/finance/scenarios/",
        {"action": "propose", "code": "STRUCTURING", "params": '{"nope": 1}', "note": "tighter after audit"},
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert 'value="STRUCTURING"' in body and 'value="{&quot;nope&quot;: 1}"' in body
    assert 'value="tighter after audit"' in body
    assert not ScenarioVersion.objects.filter(version__gt=1).exists()
