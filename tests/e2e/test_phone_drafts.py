"""On a phone (390 px) in a real Chromium that runs no service worker (the suite served over plain HTTP
on a plant network: no secure context, so no outbox, test_offline_outbox.py): a work order typed with no
connection is kept on the phone as a draft and filed once when sent again; one whose answer was lost on
the way back is not filed twice when its restored draft is sent again."""

from __future__ import annotations

import re

import pytest

from manufacturing.models import Line, Machine, Site, WorkOrder

PHONE = {"width": 390, "height": 844}
FORM_URL = re.compile(r".*/manufacturing/work-orders/new/(\?.*)?$")


@pytest.fixture
def machine(db):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    line = Line.objects.create(site=site, name="Line 1")
    return Machine.objects.create(line=line, tag="CWC04009", name="Chiller 9")


def _new_form(page, machine) -> None:
    page.goto(f"/manufacturing/work-orders/new/?machine={machine.pk}")
    page.locator('[data-testid="new-work-order-form"]').wait_for()


@pytest.mark.e2e
@pytest.mark.browser_context(service_workers="block")
@pytest.mark.django_db(transaction=True)
def test_typed_offline_kept_on_the_phone_and_filed_once_when_back(page, log_in, make_user, machine):
    page.set_viewport_size(PHONE)
    log_in(make_user("maintenance_engineer", site="site-a"))
    _new_form(page, machine)
    page.fill("input[name=title]", "Condenser fan bearing growling")
    page.fill("textarea[name=description]", "Loud at start-up, DE side, since the night shift")
    page.context.set_offline(True)
    page.click("button:has-text('File')")
    note = page.locator('[data-testid="draft-note"]')
    assert "No connection" in note.inner_text()
    assert WorkOrder.objects.count() == 0
    page.context.set_offline(False)
    _new_form(page, machine)  # later, back in coverage: the form comes back as typed
    assert "Restored what you typed" in note.inner_text()
    assert page.input_value("input[name=title]") == "Condenser fan bearing growling"
    assert page.input_value("textarea[name=description]").startswith("Loud at start-up")
    page.click("button:has-text('File')")
    page.locator('[data-testid="status"]').wait_for()
    work_order = WorkOrder.objects.get()
    assert work_order.title == "Condenser fan bearing growling"
    assert page.get_attribute("body", "data-sent") == work_order.submission_key
    _new_form(page, machine)  # the server took it: the draft is gone
    assert note.count() == 0 and page.input_value("input[name=title]") == ""
    page.fill("input[name=title]", "Half typed on a shared phone")
    drafts = "() => Object.keys(localStorage).filter((key) => key.startsWith('suite-draft:')).length"
    assert page.evaluate(drafts) == 1
    page.click("form[data-logout] button")  # signing out leaves nothing typed for the next person
    page.wait_for_load_state()
    assert page.evaluate(drafts) == 0


@pytest.mark.e2e
@pytest.mark.browser_context(service_workers="block")
@pytest.mark.django_db(transaction=True)
def test_an_answer_lost_on_the_way_back_is_reported_on_the_next_page(
    browser, page, log_in, make_user, machine
):
    """The server filed it but the phone saw only an error: the next page says it was filed (messages
    live in the session, not on the lost response) and the draft is dropped; nothing is filed twice."""
    page.set_viewport_size(PHONE)
    log_in(make_user("maintenance_engineer", site="site-a"))
    _new_form(page, machine)
    page.fill("input[name=title]", "Chilled water pump seal weeping")

    # The send reaches the server through a copy of the phone's cookies, so the answer (its cookies
    # included) is dropped on the way back, as a lost connection would.
    wire = browser.new_context()
    wire.add_cookies(page.context.cookies())

    def lose_the_answer(route):
        wire.request.fetch(route.request, max_redirects=0)  # the server files the work order ...
        route.abort("connectionreset")  # ... and its answer never reaches the phone

    page.route(
        FORM_URL,
        lambda route: lose_the_answer(route) if route.request.method == "POST" else route.continue_(),
    )
    page.click("button:has-text('File')")
    for _ in range(100):  # the route handler runs while Playwright waits
        if WorkOrder.objects.exists():
            break
        page.wait_for_timeout(100)
    page.unroute(FORM_URL)
    wire.close()
    work_order = WorkOrder.objects.get()
    _new_form(page, machine)
    assert f"Work order {work_order.pk} filed." in page.locator(".messages").inner_text()
    assert page.locator('[data-testid="draft-note"]').count() == 0
    assert page.input_value("input[name=title]") == ""
    assert WorkOrder.objects.count() == 1
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.e2e
@pytest.mark.browser_context(service_workers="block")
@pytest.mark.django_db(transaction=True)
def test_a_draft_sent_again_after_its_answer_was_lost_files_once(page, log_in, make_user, machine):
    """A draft still holding a key the server has used (the phone never came back to a page of ours
    before sending it again) lands on the work order already filed."""
    page.set_viewport_size(PHONE)
    engineer = make_user("maintenance_engineer", site="site-a")
    log_in(engineer)
    _new_form(page, machine)
    page.fill("input[name=title]", "Chilled water pump seal weeping")
    key = page.input_value("input[name=submission]")
    from manufacturing.services import work_order_file

    # Filed by that send, whose answer (and the session's word of it) the phone never saw.
    work_order_file(
        actor=engineer, machine=machine, title="Chilled water pump seal weeping", submission_key=key
    )
    page.click("button:has-text('File')")
    page.locator('[data-testid="status"]').wait_for()
    assert "was filed once" in page.locator(".messages").inner_text()
    assert WorkOrder.objects.count() == 1
