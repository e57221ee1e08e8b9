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
