"""A real Chromium logs in as each demo role and sees that role's home and navigation."""

import pytest

from accounts.demo import DEMO_USERS, create_demo_organisation

PASSWORD = "journey-password-42"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_each_demo_role_logs_in_and_sees_its_home(page):
    create_demo_organisation(password=PASSWORD)
    seen = {}
    for spec in DEMO_USERS:
        page.goto("/")
        page.fill("#id_username", spec.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        heading = page.locator('[data-testid="role-home"]')
        heading.wait_for()
        role = heading.get_attribute("data-role")
        assert role == spec.roles[0].value
        nav = sorted(page.locator("nav.mainnav a").evaluate_all("els => els.map(e => e.dataset.nav)"))
        seen[spec.username] = nav
        assert page.locator('[data-testid="current-user"]').inner_text()
        page.click("text=Log out")
        page.locator("#id_username").wait_for()
    assert "admin" in seen["admin"]
    assert "admin" not in seen["clinician"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_wrong_role_page_shows_a_readable_403(page):
    create_demo_organisation(password=PASSWORD)
    page.goto("/login/")
    page.fill("#id_username", "clinician")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.locator('[data-testid="role-home"]').wait_for()
    response = page.goto("/home/auditor/")
    assert response.status == 403
    assert "You don't have access to this page" in page.inner_text("body")
