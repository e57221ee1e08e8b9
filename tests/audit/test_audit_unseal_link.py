"""The trail event page offers "Open the sealed texts" only to a role the policy lets open them
(issue 11): the same "unseal" question the view asks when the link is followed, asked untrailed."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.roles import Role
from audit.models import Event
from audit.sealing import sealed_texts
from audit.services import record

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.audit.urls")]
LINK = b'href="?unseal=1"'


@pytest.fixture(autouse=True)
def private_keys(settings, tmp_path):
    settings.VAULT_KEY_DIR = tmp_path / "keys"


def _sealed_event(make_user, resource_type: str, resource_id: int) -> Event:
    texts = sealed_texts({"note": "Customer explained the wire."}, action=f"{resource_type}.note",
                         resource_type=resource_type, resource_id=resource_id)  # fmt: skip
    return record(actor=make_user(Role.ADMIN), action=f"{resource_type}.note", resource_type=resource_type,
                  resource_id=resource_id, outcome="succeeded", payload=texts)  # fmt: skip


@pytest.mark.parametrize(
    ("role", "resource_type", "offered"),
    [
        (Role.COMPLIANCE_OFFICER, "case", False),  # reads AML events; nobody opens a case's texts
        (Role.AML_AUDITOR, "case", False),
        (Role.AUDITOR, "case", False),
        (Role.AUDITOR, "study", True),  # the policy lets an auditor open a study event's texts
    ],
)
def test_the_link_is_offered_only_where_following_it_is_allowed(
    client, make_user, role, resource_type, offered
):
    event = _sealed_event(make_user, resource_type, 41)
    client.force_login(make_user(role))
    url = reverse("audit:event_detail", args=[event.pk])
    denials = Event.objects.filter(action="trail_event.unseal", outcome="denied").count()

    page = client.get(url)
    assert page.status_code == 200 and b'data-testid="sealed-texts"' in page.content
    assert (LINK in page.content) is offered
    if not offered:
        assert b"Your role may not open them." in page.content
    # Deciding whether to offer the link trails nothing; following it gets what the link promised.
    assert Event.objects.filter(action="trail_event.unseal", outcome="denied").count() == denials
    assert client.get(url, {"unseal": "1"}).status_code == (200 if offered else 403)
