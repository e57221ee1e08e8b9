"""What the officers' pages offer and say: only the forms the policy would accept (auditors read and
change nothing), the second officer told on their home page what waits for their approval, scenario
parameters in units, and each trail row one click from the decision trail."""

from __future__ import annotations

import pytest

from finance.models import Alert, Case
from finance.services import sar as sar_services

pytestmark = pytest.mark.django_db


def test_auditors_get_read_only_pages_and_officers_the_forms(client, screened, officer, auditor):
    case = Case.objects.get()
    client.force_login(auditor)
    queue = client.get("/finance/").content.decode()
    page = client.get(f"/finance/cases/{case.pk}/").content.decode()
    scenarios = client.get("/finance/scenarios/").content.decode()
    assert 'data-testid="import-form"' not in queue and 'name="assignee"' not in queue
    assert 'data-testid="read-only"' in queue and 'data-testid="read-only"' in page
    for form in (
        'data-testid="draft-sar"',
        'data-testid="disposition-form"',
        'value="note"',
        'value="escalate"',
    ):
        assert form not in page
    assert 'value="propose"' not in scenarios

    client.force_login(officer)
    queue = client.get("/finance/").content.decode()
    page = client.get(f"/finance/cases/{case.pk}/").content.decode()
    assert 'data-testid="import-form"' in queue and 'name="assignee"' in queue
    assert 'data-testid="draft-sar"' in page and 'data-testid="disposition-form"' in page
    assert 'data-testid="read-only"' not in queue + page
    assert 'value="propose"' in client.get("/finance/scenarios/").content.decode()


def test_the_second_officer_is_told_what_waits_for_their_approval(
    client, screened, officer, officer2, auditor
):
    case = Case.objects.get()
    sar = sar_services.sar_draft(actor=officer, case=case, use_model=False)
    Alert.objects.update(assignee=officer2)

    client.force_login(officer2)
    home = client.get("/", follow=True).content.decode()
    assert 'data-panel="finance-approval"' in home and f"/finance/sars/{sar.pk}/" in home
    assert 'data-panel="finance-mine"' in home and f"/finance/alerts/{Alert.objects.get().pk}/" in home

    client.force_login(officer)  # the drafter cannot approve their own draft: nothing waits for them
    assert 'data-panel="finance-approval"' not in client.get("/", follow=True).content.decode()
    client.post(
        f"/finance/cases/{case.pk}/", {"action": "prepare_close", "disposition": "no_sar", "reason": "x"}
    )
    assert "Closing as <strong>No SAR</strong>" in client.get(f"/finance/cases/{case.pk}/").content.decode()
    client.force_login(officer2)  # the closing the first officer prepared waits for the second
    assert f"Case C{case.pk}: closing as no sar" in client.get("/", follow=True).content.decode()
    client.force_login(auditor)  # auditors approve nothing
    assert 'data-panel="finance-approval"' not in client.get("/", follow=True).content.decode()


def test_scenario_parameters_read_in_units_and_the_trail_is_one_click_away(client, screened, officer):
    client.force_login(officer)
    scenarios = client.get("/finance/scenarios/").content.decode()
    assert "10,000 USD" in scenarios and "['cash']" not in scenarios and "cash" in scenarios
    assert " days</div>" in scenarios  # e.g. window_s 3 days, not 259200

    alert = Alert.objects.get()
    page = client.get(f"/finance/alerts/{alert.pk}/").content.decode()
    assert f"/audit/?resource_type=alert&amp;resource_id={alert.pk}" in page
    event_link = page.split('href="/audit/events/', 1)[1].split('"', 1)[0]
    assert client.get(f"/audit/events/{event_link}").status_code == 200
