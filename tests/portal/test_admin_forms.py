"""The Django admin edits attributes the policy relies on: units from the organisation, certifications as a list."""

import pytest

from accounts.admin import SuiteUserChangeForm, SuiteUserCreationForm
from accounts.models import OrgUnit
from accounts.roles import Role


@pytest.fixture
def units(db):
    OrgUnit.objects.create(kind=OrgUnit.Kind.DEPARTMENT, code="radiology", name="Radiology")
    OrgUnit.objects.create(kind=OrgUnit.Kind.TEAM, code="aml-eu", name="AML team EU")
    OrgUnit.objects.create(kind=OrgUnit.Kind.SITE, code="site-a", name="Plant site A")


def _change_data(user, **values):
    form = SuiteUserChangeForm(instance=user)
    data = {name: form.initial.get(name) for name in form.fields if form.initial.get(name) is not None}
    data["groups"] = [group.pk for group in user.groups.all()]
    data.update(values)
    return {key: value for key, value in data.items() if key not in ("user_permissions", "password")}


def test_departments_and_sites_are_chosen_from_the_organisations_units(units, make_user):
    user = make_user(Role.RADIOLOGIST, department="radiology")
    form = SuiteUserChangeForm(instance=user)
    assert dict(form.fields["department"].choices).keys() == {"", "radiology", "aml-eu"}
    assert dict(form.fields["site"].choices).keys() == {"", "site-a"}
    typo = SuiteUserChangeForm(_change_data(user, department="radiolgy"), instance=user)
    assert not typo.is_valid() and "department" in typo.errors
    creation = SuiteUserCreationForm()
    assert "site-a" in dict(creation.fields["site"].choices)


def test_certifications_are_edited_as_a_list(units, make_user):
    user = make_user(Role.RADIOLOGIST, department="radiology", certifications=["board_certified"])
    form = SuiteUserChangeForm(instance=user)
    assert form["certifications"].value() == "board_certified"
    edited = SuiteUserChangeForm(
        _change_data(user, certifications="board_certified\n mammography , board_certified\n"), instance=user
    )
    assert edited.is_valid(), edited.errors
    edited.save()
    user.refresh_from_db()
    assert user.certifications == ["board_certified", "mammography"]


def test_a_code_that_is_no_longer_a_unit_stays_visible(units, make_user):
    user = make_user(Role.CLINICIAN, department="oncology")
    form = SuiteUserChangeForm(instance=user)
    assert dict(form.fields["department"].choices)["oncology"] == "oncology (not an organisation unit)"


def test_the_admin_pages_use_these_forms(client, units, make_user):
    admin_user = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    user = make_user(Role.RADIOLOGIST, department="radiology", certifications=["board_certified"])
    client.force_login(admin_user)
    change = client.get(f"/admin/accounts/user/{user.pk}/change/")
    assert change.status_code == 200
    assert isinstance(change.context["adminform"].form, SuiteUserChangeForm)
    assert b'<option value="site-a">' in change.content
    assert client.get("/admin/accounts/user/add/").status_code == 200
    # Staff administrators get no scheduler models in the admin (superuser-only, and listed nowhere).
    index = client.get("/admin/").content.decode()
    assert "Organisation units" in index or "Org units" in index
