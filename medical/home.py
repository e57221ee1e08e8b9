"""The medical app's home-page panels: the newest studies the user may open, and (for those who may
review) the studies waiting for a burned-in annotation review."""

from __future__ import annotations

from django.urls import reverse

from portal.homes import HomeRow

RECENT = 5


def recent_studies(user) -> list[HomeRow]:
    from medical.selectors import studies_visible_to

    return [_row(study) for study in studies_visible_to(user)[:RECENT]]


def awaiting_review(user) -> list[HomeRow]:
    from access.decisions import decide
    from medical.models import Study
    from medical.selectors import studies_visible_to

    pending = studies_visible_to(user).filter(burned_in_review=Study.BurnedInReview.PENDING)
    return [
        _row(study, badge="review") for study in pending[:RECENT] if decide(user, "review", study).allowed
    ]


def _row(study, badge: str = "") -> HomeRow:
    received = study.created_at.strftime("%Y-%m-%d %H:%M")
    return HomeRow(
        label=f"Study {study.pk} {study.modalities or ''}".strip(),
        url=reverse("medical:study_detail", args=[study.pk]),
        detail=f"{study.patient.pseudonym} · {study.department} · received {received}",
        badge=badge,
    )


def break_glass_notices(user) -> list[HomeRow]:
    """Break-glass reads of this user's department's originals by someone from another department,
    for those who review the department's studies (its radiologists, per the policy)."""
    from access.decisions import decide
    from access.resources import Resource
    from audit.models import Event

    department = getattr(user, "department", "") or ""
    if (
        not department
        or not decide(user, "review", Resource("study", "notice", {"department": department})).allowed
    ):
        return []
    events = (
        Event.objects.filter(action="study.break_glass", resource_type="study")
        .filter(payload_json__contains='"cross_department":true')
        .filter(payload_json__contains=f'"owning_department":{_json_text(department)}')
        .order_by("-id")[:RECENT]
    )
    return [
        HomeRow(
            label=f"Study {event.resource_id}: original opened by {event.actor_label}",
            url=reverse("medical:study_detail", args=[int(event.resource_id)]),
            detail=f"from {event.payload.get('user_department') or 'no department'} · "
            f"{event.timestamp:%Y-%m-%d %H:%M} · reason: {_reason(event)}",
            badge="break-glass",
        )
        for event in events
    ]


def _reason(event) -> str:
    """The sealed break-glass reason, opened for the owning department's reviewers (the notice's
    readers, decided above). Events from before it was sealed carry it in clear."""
    from audit.sealing import has_sealed_texts, open_texts
    from vault.errors import VaultError

    if not has_sealed_texts(event):
        return event.payload.get("reason", "")
    try:
        return open_texts(event).get("reason", "")
    except VaultError:
        return "(sealed; it does not open with the vault's keys)"


def _json_text(value: str) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
