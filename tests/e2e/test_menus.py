"""A real Chromium signs in as every demo role and opens every entry of its menus: no dead ends."""

import pytest

from accounts.demo import DEMO_USERS, create_demo_organisation

PASSWORD = "menu-walk-password-42"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_every_demo_role_opens_every_entry_of_its_menus_without_a_403(page):
    create_demo_organisation(password=PASSWORD)
    walked = {}
    for spec in DEMO_USERS:
        page.goto("/login/")
        page.fill("#id_username", spec.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.locator('[data-testid="role-home"]').wait_for()
        main = page.locator("nav.mainnav a").evaluate_all("els => els.map(e => [e.dataset.nav, e.href])")
        page.click('[data-testid="account-menu"] summary')
        account = page.locator('[data-testid="account-menu"] a').evaluate_all(
            "els => els.map(e => [e.dataset.nav, e.href])"
        )
        assert {key for key, _ in account} == {"account-tokens", "account-password", "account-sessions"}
        for key, href in main + account:
            response = page.goto(href)
            assert response.status == 200, (
                f"{spec.username}: menu entry {key} ({href}) answered {response.status}"
            )
            assert not page.locator('[data-testid="error-403"]').count()
        walked[spec.username] = sorted(key for key, _ in main)
        page.goto("/")
        page.click("text=Log out")
        page.locator("#id_username").wait_for()
    # The menus differ by role; each role has something to do.
    assert all(walked.values()), walked
    assert "admin" in walked["admin"] and "models" in walked["admin"] and "tuning" not in walked["admin"]
    assert "tuning" in walked["mlengineer"]
    assert "audit-trail" in walked["auditor"] and "models" not in walked["auditor"]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_page_the_role_cannot_use_names_the_check_and_offers_what_it_can_do(page):
    create_demo_organisation(password=PASSWORD)
    page.goto("/login/")
    page.fill("#id_username", "auditor")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.locator('[data-testid="role-home"]').wait_for()
    response = page.goto("/tuning/")
    assert response.status == 403
    assert page.inner_text('[data-testid="checked-resource"]') == "portal:tuning"
    offered = page.locator('[data-testid="alternatives"] a').evaluate_all(
        "els => els.map(e => e.textContent)"
    )
    assert "Decision trail" in offered
