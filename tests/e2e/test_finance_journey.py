"""A compliance officer's journey in a real Chromium: import a batch, open the alert, read its
evidence and trail (and replay it), draft a SAR, have a second officer approve it, close the case
with four eyes."""

from __future__ import annotations

import re

import pytest

from finance.models import SAR, Case

HEADER = (
    "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
    "Payment Currency,Payment Format,Is Laundering\n"
)
ROWS = (
    "".join(
        f"2022/09/01 0{h}:15,011,8000ABC01,022,80009{h}F0,9500.00,US Dollar,9500.00,US Dollar,Cash,1\n"
        for h in range(3)
    )
    + "2022/09/01 05:00,011,8000ZZZ99,022,8000YYY88,120.00,US Dollar,120.00,US Dollar,Wire,0\n"
)


def _log_out(page):
    page.context.clear_cookies()  # a fresh session for the next officer


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_import_alert_sar_and_four_eyes_closing(page, log_in, make_user, tmp_path):
    maker = make_user("compliance_officer", department="aml-eu", username="carl")
    checker = make_user("compliance_officer", department="aml-eu", username="cora")
    csv = tmp_path / "batch.csv"
    csv.write_text(HEADER + ROWS)

    log_in(maker)
    page.goto("/finance/")
    page.select_option('[data-testid="import-form"] select[name=format]', "amlworld")
    page.set_input_files('[data-testid="import-form"] input[type=file]', str(csv))
    page.click('[data-testid="import-form"] button[type=submit]')
    page.get_by_text(re.compile(r"4 transactions screened, 1 alerts")).wait_for()
    page.locator('[data-testid="alert-row"] a').first.click()

    assert "STRUCTURING" in page.inner_text('[data-testid="alert-evidence"]')
    assert "alert.raise" in page.inner_text('[data-testid="alert-trail"]')
    page.click('[data-testid="replay-link"]')
    assert page.inner_text('[data-testid="replay-result"]') == "identical"

    page.click('[data-testid="alert-case"]')
    assert page.locator('[data-testid="case-graph"] line').count() >= 3
    # drafting takes a while with a model: once sent, the form says so and a second submission is not
    # sent (the request is held here, so the page stays to be looked at)
    held = []
    page.route(re.compile(r".*/finance/cases/\d+/$"), lambda route: held.append(route))
    state = page.locator('[data-testid="draft-sar"]').evaluate(
        """async (button) => {
            button.click();
            await new Promise((resolve) => setTimeout(resolve, 50));
            button.form.requestSubmit();
            const note = button.form.querySelector('[data-testid="busy-note"]');
            return {note: note ? note.textContent : "", disabled: button.disabled};
        }"""
    )
    assert state["disabled"] and "Drafting the SAR" in state["note"]
    page.wait_for_timeout(300)
    assert len(held) == 1  # the second submission never left the browser
    held[0].continue_()
    page.unroute(re.compile(r".*/finance/cases/\d+/$"))
    page.wait_for_url(re.compile(r".*/finance/sars/\d+/$"))
    assert SAR.objects.count() == 1
    sentences = page.inner_text('[data-testid="sar-sentences"]')
    assert "[A" in sentences and "[T" in sentences
    assert page.locator('[data-testid="four-eyes"]').is_visible()  # the drafter cannot approve
    sar_url = page.url
    _log_out(page)

    log_in(checker)
    page.goto(sar_url)
    page.click('[data-testid="approve-sar"]')
    assert page.inner_text('[data-testid="sar-status"]') == "Approved"
    case = Case.objects.get()
    page.goto(f"/finance/cases/{case.pk}/")
    page.select_option('[data-testid="disposition-form"] select', "sar_filed")
    page.click('[data-testid="disposition-form"] button[type=submit]')
    assert page.locator('[data-testid="four-eyes"]').is_visible()  # the preparer cannot approve the closing
    _log_out(page)

    log_in(maker)
    page.goto(f"/finance/cases/{case.pk}/")
    page.click('[data-testid="approve-close"]')
    assert page.inner_text('[data-testid="case-status"]') == "Closed"
    case.refresh_from_db()
    sar = SAR.objects.get()
    assert (case.disposition, case.closing_prepared_by, case.closed_by) == ("sar_filed", checker, maker)
    assert (sar.prepared_by, sar.approved_by) == (maker, checker)
