"""On a phone (390 px) in a real Chromium: the maintenance pages opened with a connection are kept on the
phone (a service worker) and shown, marked as the saved copy, when it has none; a page never opened says
so; signing out leaves nothing kept for the next person."""

from __future__ import annotations

import pytest

from manufacturing.models import Line, Machine, Site

PHONE = {"width": 390, "height": 844}
KEPT = "() => caches.keys().then((names) => names.filter((name) => name.startsWith('suite-maintenance-')))"


@pytest.fixture
def machines(db):
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    line = Line.objects.create(site=site, name="Line 1")
    return [
        Machine.objects.create(line=line, tag="CWC04009", name="Chiller 9"),
        Machine.objects.create(line=line, tag="CWC04013", name="Chiller 13"),
    ]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_pages_opened_online_are_shown_offline_and_signing_out_drops_them(page, log_in, make_user, machines):
    opened, never = machines
    page.set_viewport_size(PHONE)
    engineer = make_user("maintenance_engineer", site="site-a")
    log_in(engineer)
    page.goto(f"/manufacturing/assets/{opened.pk}/")
    page.wait_for_function("() => navigator.serviceWorker && !!navigator.serviceWorker.controller")
    page.goto(f"/manufacturing/assets/{opened.pk}/")  # through the worker now: kept
    assert page.locator('[data-testid="offline-note"]').count() == 0
    assert sorted(page.evaluate(KEPT)) == [
        "suite-maintenance-assets",
        f"suite-maintenance-pages-{engineer.pk}",
    ]

    page.context.set_offline(True)
    page.goto(f"/manufacturing/assets/{opened.pk}/")
    assert "CWC04009" in page.locator("h1").inner_text()
    note = page.locator('[data-testid="offline-note"]')
    assert "No connection: this page is as it was at" in note.inner_text()
    assert "What you type in its forms is kept on this device" in note.inner_text()  # it has a draft form
    # the page still looks as it did (its styles were kept too) and fits the phone
    assert page.evaluate("getComputedStyle(document.querySelector('.topbar')).display") != "inline"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.goto(f"/manufacturing/assets/{never.pk}/")
    assert "was not opened on this phone" in page.locator('[data-testid="offline-page"]').inner_text()

    page.context.set_offline(False)
    page.goto(f"/manufacturing/assets/{opened.pk}/")
    assert page.locator('[data-testid="offline-note"]').count() == 0
    page.click("form[data-logout] button")  # a shared phone keeps nothing for the next person
    page.wait_for_load_state()
    assert page.evaluate(KEPT) == []
    assert page.evaluate("navigator.serviceWorker.getRegistrations().then((found) => found.length)") == 0


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_next_engineer_on_the_phone_never_gets_the_pages_kept_for_the_last(
    page, log_in, make_user, machines
):
    """A session that ended without signing out (it expired) leaves the last engineer's pages kept; the next
    engineer's worker deletes them when it starts."""
    first, second = (
        make_user("maintenance_engineer", site="site-a"),
        make_user("maintenance_engineer", site="site-a"),
    )
    page.set_viewport_size(PHONE)
    log_in(first)
    page.goto(f"/manufacturing/assets/{machines[0].pk}/")
    page.wait_for_function("() => navigator.serviceWorker && !!navigator.serviceWorker.controller")
    page.goto(f"/manufacturing/assets/{machines[0].pk}/")
    assert f"suite-maintenance-pages-{first.pk}" in page.evaluate(KEPT)
    page.context.clear_cookies()  # the session is gone, nothing was cleared
    log_in(second)
    page.goto(f"/manufacturing/assets/{machines[1].pk}/")
    page.wait_for_function(  # the second engineer's worker has taken over, and dropped the first's pages
        "([first, second]) => navigator.serviceWorker.controller"
        " && navigator.serviceWorker.controller.scriptURL.endsWith(`user=${second}`)"
        " && caches.keys().then((names) => !names.includes(`suite-maintenance-pages-${first}`))",
        arg=[first.pk, second.pk],
        timeout=30_000,  # a worker installed and activated under the load of a full run
    )
    page.goto(f"/manufacturing/assets/{machines[1].pk}/")
    assert sorted(page.evaluate(KEPT)) == ["suite-maintenance-assets", f"suite-maintenance-pages-{second.pk}"]
