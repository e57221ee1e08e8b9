"""The menu offers a page exactly when the page answers: one policy question shared by both."""

import pytest
from django.test import Client

from accounts.roles import Role
from audit.models import Event
from portal.navigation import ACCOUNT, MAIN, entries, items_for
from tests.factories import PASSWORD

ATTRIBUTES = {"department": "radiology", "site": "site-a"}


@pytest.mark.django_db
def test_every_menu_entry_asks_a_policy_question():
    for entry in entries():
        if entry.check is None:
            action, resource = entry.policy_question()  # UndeclaredPage names the entry otherwise
            assert action and ":" in resource, entry.key


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_an_entry_is_shown_exactly_when_its_page_answers(client, make_user, role):
    user = make_user(role, is_staff=role == Role.ADMIN, **ATTRIBUTES)
    client.force_login(user)
    shown = {item["key"] for item in items_for(user, menu=MAIN)}
    assert shown, f"{role}: an empty menu"
    for entry in entries():
        if entry.menu != MAIN:
            continue
        status = client.get(entry.url).status_code
        if entry.key in shown:
            assert status == 200, f"{role}: {entry.key} is in the menu but answers {status}"
        elif entry.decision(user).allowed:  # hidden by its `allowed` narrowing (nothing to show yet)
            assert entry.allowed is not None and status == 200, f"{role}: {entry.key} answers {status}"
        else:
            assert status in (302, 403), f"{role}: {entry.key} is hidden but answers {status}"
    account = {item["key"] for item in items_for(user, menu=ACCOUNT)}
    assert account == {"account-tokens", "account-password", "account-sessions"}
    for item in items_for(user, menu=ACCOUNT):
        assert client.get(item["url"]).status_code == 200


@pytest.mark.django_db
def test_a_superuser_without_the_admin_role_gets_no_admin_site(client, make_user):
    """No bypass the policy does not know: the admin site asks the policy (portal:admin)."""
    superuser = make_user(Role.AUDITOR, is_staff=True, is_superuser=True)
    client.force_login(superuser)
    assert "admin" not in {item["key"] for item in items_for(superuser)}
    assert client.get("/admin/").status_code == 302  # to the admin's sign-in: no access
    administrator = make_user(Role.ADMIN, is_staff=True)
    client.force_login(administrator)
    assert "admin" in {item["key"] for item in items_for(administrator)}
    assert client.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_the_403_names_the_resource_checked_and_what_the_role_can_do(client, make_user):
    client.force_login(make_user(Role.AUDITOR))
    response = client.get("/models/")
    assert response.status_code == 403
    assert response.context["checked_resource"] == "portal:models"
    assert response.context["checked_action"] == "view"
    assert "audit-trail" in {item["key"] for item in response.context["alternatives"]}
    denial = Event.objects.filter(action="portal.view", outcome="denied").latest("sequence")
    assert denial.resource_id == "models"


@pytest.mark.django_db
def test_the_playground_does_not_open_without_a_usable_model(client, make_user):
    client.force_login(make_user(Role.CLINICIAN, department="radiology"))
    response = client.get("/models/playground/")
    assert response.status_code == 302 and response["Location"] == "/models/"
    page = client.get("/models/")
    assert b"nothing to run" in page.content
    assert b"No model is registered yet" in page.content


@pytest.mark.django_db
def test_models_none_of_which_is_open_to_the_user_are_not_none_registered(client, make_user):
    from inference.models import LanguageModel

    LanguageModel.objects.create(name="some-llm", path="/nonexistent")  # not a manufacturing_* model
    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site="site-a"))
    page = client.get("/models/").content.decode()
    assert "some-llm" not in page and "None of this site's models is open to you" in page
    assert "No model is registered yet" not in page


@pytest.mark.django_db
def test_active_sessions_are_listed_and_the_others_can_be_signed_out(make_user):
    user = make_user(Role.MAINTENANCE_ENGINEER, site="site-a")
    here, elsewhere = Client(), Client(HTTP_USER_AGENT="OtherBrowser/1.0")
    for browser in (here, elsewhere):
        assert browser.post("/login/", {"username": user.username, "password": PASSWORD}).status_code == 302
    page = here.get("/account/sessions/")
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    rows = page.context["sessions"]
    assert len(rows) == 2 and sum(row.current for row in rows) == 1
    assert any("OtherBrowser" in row.agent for row in rows)
    assert here.post("/account/sessions/").status_code == 302
    assert len(here.get("/account/sessions/").context["sessions"]) == 1
    assert elsewhere.get("/account/sessions/").status_code == 302  # signed out: back to login
    event = Event.objects.filter(action="account.sessions_end").latest("sequence")
    assert event.payload["ended"] == 1 and event.resource_id == user.username


@pytest.mark.django_db
def test_every_role_changes_its_own_password(client, make_user):
    user = make_user(Role.AUDITOR)
    client.force_login(user)
    assert client.get("/account/password/").status_code == 200
    new = "a-much-better-passphrase-7"
    response = client.post(
        "/account/password/", {"old_password": PASSWORD, "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
