"""The Django admin: no periodic-task/result models for staff who are not superusers."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from accounts.roles import Role

pytestmark = pytest.mark.django_db


def test_staff_admin_sees_no_scheduler_models(client, make_user):
    staff = make_user(Role.ADMIN, is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label__startswith="django_celery"))
    client.force_login(staff)
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 403
    assert b"django_celery_beat" not in client.get("/admin/").content


def test_superuser_still_sees_them(client, make_user):
    client.force_login(make_user(Role.ADMIN, is_staff=True, is_superuser=True))
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 200


def test_the_user_page_shows_no_fragment_of_the_password_hash(client, make_user):
    admin_user = make_user(Role.ADMIN, is_staff=True, is_superuser=True)
    target = make_user(Role.CLINICIAN)
    client.force_login(admin_user)
    page = client.get(f"/admin/accounts/user/{target.pk}/change/").content.decode()
    algorithm, *_, digest = target.password.split("$")
    assert "A password is set." in page and "../password/" in page
    assert digest[:6] not in page and "salt" not in page.lower() and algorithm not in page
