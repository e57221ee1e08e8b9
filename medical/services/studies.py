"""Decisions about a study after ingest: sharing it with a named colleague and taking the share
back, break-glass reading of the identified original, and the burned-in annotation review. Each
is authorized by the access policy and trailed in the same transaction as its effect."""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from medical import storage
from medical.models import Instance, Study

SHARED_ACTIONS = ("view", "ask")
MIN_BREAK_GLASS_REASON = 15


class StudyActionRefused(ValueError):
    """The request cannot be carried out as given; the message says what to change."""


def study_share(*, actor, study: Study, colleague_username: str) -> list[str]:
    """Let a named clinician or radiologist view and ask about `study` (guardian grants, trailed).

    The actor needs `share` on the study (PolicyDenied otherwise, trailed). Returns the grants.
    """
    from access.decisions import decide
    from access.enforcement import check
    from access.services import grant

    check(actor, "share", study)
    colleague = get_user_model().objects.filter(username=colleague_username.strip(), is_active=True).first()
    if colleague is None:
        raise StudyActionRefused(f"There is no active user named {colleague_username.strip()!r}.")
    if not decide(colleague, "view", "portal:medical").allowed:  # the policy, not a role list
        raise StudyActionRefused(
            f"{colleague.get_username()} is not a clinician or radiologist, so a share would give no access."
        )
    if colleague.pk == getattr(actor, "pk", None):
        raise StudyActionRefused("You cannot share a study with yourself.")
    with transaction.atomic():
        return [grant(actor=actor, user=colleague, action=action, obj=study) for action in SHARED_ACTIONS]


def study_unshare(*, actor, study: Study, colleague_username: str) -> bool:
    """Take back the grants `study_share` gave a colleague (trailed, one event per grant).

    The actor needs `unshare` on the study (PolicyDenied otherwise, trailed). Returns whether the
    colleague held a grant; StudyActionRefused when they never did, so a typo is not a silent no-op.
    """
    from access.enforcement import check
    from access.grants import find_grant
    from access.services import revoke

    check(actor, "unshare", study)
    colleague = get_user_model().objects.filter(username=colleague_username.strip()).first()
    if colleague is None or not any(find_grant(colleague, action, study) for action in SHARED_ACTIONS):
        raise StudyActionRefused(f"This study is not shared with {colleague_username.strip()!r}.")
    with transaction.atomic():
        held = [revoke(actor=actor, user=colleague, action=action, obj=study) for action in SHARED_ACTIONS]
    return any(held)


def original_read_break_glass(*, user, instance: Instance, reason: str, actor=None) -> bytes:
    """The identified original of `instance`, byte for byte as received. A break-glass action:

    the policy must allow `break_glass` on the study (the rule trails every allowed use), a
    reason is required, and the read itself is trailed with the reason and the digest returned.
    """
    from access.enforcement import check
    from audit.sealing import sealed_texts
    from audit.services import record

    reason = " ".join((reason or "").split())
    if len(reason) < MIN_BREAK_GLASS_REASON:
        raise StudyActionRefused(
            f"Break-glass access needs a reason of at least {MIN_BREAK_GLASS_REASON} characters "
            "(who needs the original, and why)."
        )
    study = instance.series.study
    decision = check(user, "break_glass", study, actor=actor)
    original = storage.sealed_store().get(
        instance.original_name,
        storage.original_context(department=study.department, sop_uid=instance.sop_instance_uid),
    )
    digest = hashlib.sha256(original).hexdigest()
    if digest != instance.original_sha256:
        raise StudyActionRefused(
            "The stored original does not match its recorded digest; tell the administrator."
        )
    with transaction.atomic():
        record(
            actor=actor if actor is not None else user,
            action="study.break_glass",
            resource_type="study",
            resource_id=study.pk,
            outcome="succeeded",
            policy=decision.policy or "",
            payload={
                "instance_id": instance.pk,
                # The reason often names the patient or the emergency: sealed like question texts
                # (its digest is in the hashed payload); the owning department's notice opens it.
                **sealed_texts(
                    {"reason": reason},
                    action="study.break_glass",
                    resource_type="study",
                    resource_id=study.pk,
                ),
                "original_sha256": digest,
                "size": len(original),
                # Reaching into another department is marked, and its radiologists see it on their
                # home page (medical.home.break_glass_notices).
                "cross_department": (getattr(user, "department", "") or "") != study.department,
                "owning_department": study.department,
                "user_department": getattr(user, "department", "") or "",
            },
        )
    return original


def study_burned_in_review(*, actor, study: Study, decision: str) -> Study:
    """Record a person's look at the pixels of a flagged study.

    "cleared": no identifying text, so models may use the study; "withheld": identifying text
    is burned in, so it stays away from models. Needs `review` on the study (the radiologists of
    its department, under the default policy).
    """
    from access.enforcement import check
    from audit.services import record

    choices = {Study.BurnedInReview.CLEARED, Study.BurnedInReview.WITHHELD}
    if decision not in choices:
        raise StudyActionRefused(f"The review decision is one of {', '.join(sorted(choices))}.")
    permission = check(actor, "review", study)
    if study.burned_in_review == Study.BurnedInReview.NOT_REQUIRED:
        raise StudyActionRefused("No instance of this study is flagged for burned-in annotation.")
    with transaction.atomic():
        previous = study.burned_in_review
        study.burned_in_review = decision
        study.burned_in_reviewed_by = actor
        study.burned_in_reviewed_at = timezone.now()
        study.save(
            update_fields=["burned_in_review", "burned_in_reviewed_by", "burned_in_reviewed_at", "updated_at"]
        )
        record(
            actor=actor,
            action="study.burned_in_review",
            resource_type="study",
            resource_id=study.pk,
            outcome="succeeded",
            policy=permission.policy or "",
            payload={"decision": decision, "previous": previous},
        )
    return study
