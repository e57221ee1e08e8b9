"""The key phone pages of the maintenance and compliance portals fit a 390 px screen in a real
Chromium: the page never scrolls sideways (wide tables scroll inside their own box)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from finance import services as finance_services
from finance.models import SAR, Alert, Case
from finance.services import sar as sar_services
from manufacturing.models import Alert as MachineAlert
from manufacturing.models import Line, Machine, Site, WorkOrder
from tests.finance.conftest import TEAM, structuring_rows

PHONE = {"width": 390, "height": 844}
LONG = "Drive-end bearing of the condenser water pump runs hot and loud; " * 3


def _page_width(page, path: str) -> int:
    response = page.goto(path)
    assert response.status == 200, path
    return page.evaluate("() => document.documentElement.scrollWidth")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_maintenance_and_compliance_pages_fit_a_phone(page, log_in, make_user):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Utilities"), tag="PMP-CW-0001", name=LONG[:128]
    )
    MachineAlert.objects.create(machine=machine, kind="vibration_zone", severity="danger", message=LONG[:250])
    work_order = WorkOrder.objects.create(site="site-a", machine=machine, title=LONG[:250], description=LONG)
    # a failure fixed last month: the home's bad actors and the asset's reliability show it
    WorkOrder.objects.create(
        site="site-a",
        machine=machine,
        title=LONG[:250],
        status="complete",
        completed_at=timezone.now() - dt.timedelta(days=30),
        downtime_hours=6.5,
        failure_mode="EXTERNAL-LEAKAGE-PROCESS-MEDIUM",
    )
    officer = make_user("compliance_officer", department=TEAM)
    finance_services.transactions_ingest(
        actor=officer,
        table=finance_services.rows_validate(structuring_rows(account="ACC-0000000000000001")),
        team=TEAM,
    )
    case, alert = Case.objects.get(), Alert.objects.get()
    sar_services.sar_draft(actor=officer, case=case, use_model=False)

    page.set_viewport_size(PHONE)
    log_in(make_user("maintenance_engineer", site="site-a"))
    page.goto("/manufacturing/")
    assert page.locator('[data-testid="bad-actors"] li').count() == 1
    for path in (
        "/manufacturing/",
        f"/manufacturing/assets/{machine.pk}/",
        f"/manufacturing/assets/{machine.pk}/?reliability=all",
        "/manufacturing/work-orders/",
        f"/manufacturing/work-orders/new/?alert={machine.alerts.get().pk}",
        f"/manufacturing/work-orders/{work_order.pk}/",
        f"/manufacturing/work-orders/{work_order.pk}/report/",
    ):
        assert _page_width(page, path) <= PHONE["width"], path

    page.context.clear_cookies()
    log_in(officer)
    for path in (
        "/finance/",
        f"/finance/alerts/{alert.pk}/",
        f"/finance/cases/{case.pk}/",
        f"/finance/sars/{SAR.objects.get().pk}/",
        "/finance/scenarios/",
    ):
        assert _page_width(page, path) <= PHONE["width"], path
