import pytest
from django.urls import reverse

from accounts.roles import Role
from tests.factories import PASSWORD


@pytest.mark.django_db
def test_login_and_logout(client, make_user):
    user = make_user(Role.CLINICIAN, department="radiology")
    response = client.post(reverse("portal:login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302
    response = client.get(reverse("portal:home"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("portal:role_home", args=["clinician"])
    assert b'data-role="clinician"' in response.content
    response = client.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert client.get(reverse("portal:home")).status_code == 302  # back to login


@pytest.mark.django_db
def test_wrong_password_is_refused_with_a_message(client, make_user):
    user = make_user(Role.CLINICIAN)
    response = client.post(reverse("portal:login"), {"username": user.username, "password": "wrong-password"})
    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
@pytest.mark.parametrize("role", list(Role))
def test_each_role_sees_its_home(client, make_user, role):
    user = make_user(role)
    client.force_login(user)
    response = client.get(reverse("portal:role_home", args=[role.value]))
    assert response.status_code == 200
    assert f'data-role="{role.value}"'.encode() in response.content


@pytest.mark.django_db
def test_the_home_page_names_certifications_in_words(client, make_user):
    user = make_user(Role.RADIOLOGIST, department="radiology", certifications=["board_certified"])
    client.force_login(user)
    page = client.get(reverse("portal:role_home", args=["radiologist"])).content.decode()
    assert "board certified" in page and "board_certified" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "other"),
    [
        (Role.CLINICIAN, Role.COMPLIANCE_OFFICER),
        (Role.MAINTENANCE_ENGINEER, Role.AUDITOR),
        (Role.AUDITOR, Role.ADMIN),
    ],
)
def test_another_roles_page_is_403_with_a_readable_page(client, make_user, role, other):
    client.force_login(make_user(role))
    response = client.get(reverse("portal:role_home", args=[other.value]))
    assert response.status_code == 403
    assert b'data-testid="error-403"' in response.content
    assert other.label.encode() in response.content
    from audit.models import Event

    # The access policy decided (rule portal_role_home), the page names what it checked.
    assert f"portal:home_{other.value}".encode() in response.content
    denial = Event.objects.filter(action="portal.view", outcome="denied").latest("sequence")
    assert denial.resource_id == f"home_{other.value}"


@pytest.mark.django_db
def test_unknown_page_is_a_readable_404(client, make_user):
    client.force_login(make_user(Role.CLINICIAN))
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert b'data-testid="error-404"' in response.content


@pytest.mark.django_db
def test_navigation_shows_only_what_the_role_may_use(client, make_user):
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    admin_page = client.get(reverse("portal:role_home", args=["admin"])).content.decode()
    assert 'data-nav="admin"' in admin_page
    client.force_login(make_user(Role.CLINICIAN))
    clinician_page = client.get(reverse("portal:role_home", args=["clinician"])).content.decode()
    assert 'data-nav="admin"' not in clinician_page


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("portal:role_home", args=["clinician"]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))
