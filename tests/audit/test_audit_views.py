"""The trail viewer in the portal: who may see it, filters, pagination, detail and export."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from accounts.roles import Role
from audit.models import Event
from tests.audit.conftest import run_sql, triggers_disabled

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.audit.urls")]

READ_PAGES = [("audit:event_list", []), ("audit:verify", [])]


def denials() -> list[Event]:
    return list(Event.objects.filter(outcome="denied", resource_type="trail"))


@pytest.mark.parametrize("url_name", ["audit:event_list", "audit:verify", "audit:export"])
def test_anonymous_is_sent_to_log_in(client, url_name):
    response = client.get(reverse(url_name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("portal:login"))
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("role", "url_name", "allowed"),
    [
        (Role.CLINICIAN, "audit:event_list", False),
        (Role.ML_ENGINEER, "audit:verify", False),
        (Role.COMPLIANCE_OFFICER, "audit:event_list", True),
        (Role.COMPLIANCE_OFFICER, "audit:verify", True),
        (Role.COMPLIANCE_OFFICER, "audit:export", False),
        (Role.AUDITOR, "audit:event_list", True),
        (Role.AUDITOR, "audit:export", True),
        (Role.ADMIN, "audit:event_list", True),
        (Role.ADMIN, "audit:export", True),
    ],
)
def test_role_access_and_denials_are_trailed(client, make_user, chain_of, role, url_name, allowed):
    chain_of(3)
    user = make_user(role)
    client.force_login(user)
    before = set(Event.objects.values_list("pk", flat=True))
    response = client.get(reverse(url_name))
    new_events = Event.objects.exclude(pk__in=before).exclude(action="auth.login")
    if allowed:
        assert response.status_code == 200
        assert not denials()
    else:
        assert response.status_code == 403
        assert b'data-testid="error-403"' in response.content
        [denial] = new_events  # nothing else changed
        action = "trail.export" if url_name == "audit:export" else "trail.read"
        assert (
            denial.action,
            denial.outcome,
            denial.actor_user,
            bool(denial.payload.get("reason")),
        ) == (
            action,
            "denied",
            user,
            True,
        )


def test_list_filters_and_paginates(client, make_user, chain_of):
    chain_of(60)
    other = make_user(Role.CLINICIAN, username="zed")
    from audit.services import record

    record(actor=other, action="study.read", resource_type="study", resource_id="1.2.3", outcome="denied")
    client.force_login(make_user(Role.AUDITOR))

    def listed(**params) -> list[str]:
        response = client.get(reverse("audit:event_list"), params)
        assert response.status_code == 200
        return [event.action + ":" + event.resource_id for event in response.context["page_obj"]]

    assert listed(actor="zed") == ["study.read:1.2.3"]
    assert listed(action="study.") == ["study.read:1.2.3"]
    assert listed(resource_type="study", resource_id="1.2.3", outcome="denied") == ["study.read:1.2.3"]
    assert len(listed(outcome="succeeded", action="test.")) == 30
    first_page, second_page = listed(action="test."), listed(action="test.", page=2)
    assert len(first_page) == 50 and len(second_page) == 10
    assert first_page[0] == "test.decide:60"  # newest first
    latest = Event.objects.get(resource_id="1.2.3").timestamp
    assert listed(since=latest.strftime("%Y-%m-%dT%H:%M:%S.%f"), action="study.") == ["study.read:1.2.3"]
    assert listed(until=latest.strftime("%Y-%m-%dT%H:%M:%S.%f"), action="study.") == []
    response = client.get(reverse("audit:event_list"), {"since": "yesterday-ish"})
    assert response.context["form"].errors["since"] and not list(response.context["page_obj"])


def test_detail_shows_payload_and_verification(client, make_user, chain_of):
    events = chain_of(4)
    client.force_login(make_user(Role.COMPLIANCE_OFFICER))
    response = client.get(reverse("audit:event_detail", args=[events[2].pk]))
    assert response.status_code == 200
    assert b'data-testid="verification" data-ok="true"' in response.content
    assert response.context["verification"].events_verified == 3
    assert json.loads(response.context["payload_pretty"]) == {"number": 3, "note": "event 3"}
    assert b"event 3" in response.content

    with triggers_disabled():
        run_sql("UPDATE {events} SET action = 'rewritten' WHERE id = %s", [events[1].pk])
    response = client.get(reverse("audit:event_detail", args=[events[2].pk]))
    assert b'data-testid="verification" data-ok="false"' in response.content
    assert b"event 2 was modified" in response.content
    earlier = client.get(reverse("audit:event_detail", args=[events[0].pk]))
    assert b'data-ok="true"' in earlier.content  # the chain still verifies up to event 1


def test_detail_verifies_from_the_newest_signed_checkpoint(client, make_user, chain_of):
    from audit.services import checkpoint_create

    chain_of(4)
    checkpoint = checkpoint_create()
    after = chain_of(2)
    last = after[-1]
    client.force_login(make_user(Role.AUDITOR))
    verification = client.get(reverse("audit:event_detail", args=[last.pk])).context["verification"]
    assert verification.ok and verification.anchored_at == checkpoint.size
    assert verification.events_verified == last.sequence - checkpoint.size + 1

    with triggers_disabled():  # after the checkpoint: caught on the event page
        run_sql("UPDATE {events} SET action = 'rewritten' WHERE id = %s", [after[0].pk])
    response = client.get(reverse("audit:event_detail", args=[last.pk]))
    assert b'data-ok="false"' in response.content
    assert f"event {after[0].sequence} was modified".encode() in response.content
    with triggers_disabled():
        run_sql("UPDATE {events} SET action = 'test.decide' WHERE id = %s", [after[0].pk])
        run_sql(
            "UPDATE {events} SET resource_id = 'x' WHERE chain = 'suite' AND sequence = %s", [checkpoint.size]
        )
    # The checkpoint's own event no longer hashes to the signed value: caught too.
    response = client.get(reverse("audit:event_detail", args=[last.pk]))
    assert b'data-ok="false"' in response.content
    assert f"event {checkpoint.size} was modified".encode() in response.content


def test_verify_page_reports_each_chain(client, make_user, chain_of):
    chain_of(2, chain="finance")
    chain_of(2, chain="medical")
    with triggers_disabled():
        run_sql("DELETE FROM {events} WHERE chain = 'medical' AND sequence = 1")
    client.force_login(make_user(Role.AUDITOR))
    content = client.get(reverse("audit:verify")).content.decode()
    assert 'data-chain="finance" data-ok="true"' in content
    assert 'data-chain="medical" data-ok="false"' in content


def test_export_download(client, make_user, chain_of):
    chain_of(3)
    client.force_login(make_user(Role.AUDITOR, username="auditor1"))
    response = client.get(reverse("audit:export"), {"format": "csv", "chain": "suite"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="trail-')
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0].startswith("chain,sequence,timestamp")
    assert len(lines) == 1 + Event.objects.filter(chain="suite").count()
    export_event = Event.objects.get(action="trail.export")
    assert (export_event.actor_label, export_event.payload["format"]) == ("auditor1", "csv")
    assert client.get(reverse("audit:export"), {"format": "xml"}).status_code == 400


def test_navigation_offers_the_trail_to_readers_only(client, make_user):
    client.force_login(make_user(Role.AUDITOR))
    assert (
        reverse("audit:event_list").encode()
        in client.get(reverse("portal:role_home", args=["auditor"])).content
    )
    client.force_login(make_user(Role.CLINICIAN))
    assert (
        reverse("audit:event_list").encode()
        not in client.get(reverse("portal:role_home", args=["clinician"])).content
    )
