"""Pending account changes that widen someone's access: the four-eyes queue (access.approvals)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AccountChangeRequest(models.Model):
    """A change one administrator asked for and a second one must approve before it takes effect.

    `change` holds only the widening part, e.g. {"roles_add": ["radiologist"], "department":
    "cardiology", "certifications_add": ["board_certified"], "is_active": true}; `before` the
    target's values of those fields when it was asked.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved and applied"
        REJECTED = "rejected", "Rejected"

    target = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_change_requests"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    change = models.JSONField()
    before = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True, help_text="Why it was rejected (optional).")

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["state", "requested_at"], name="access_change_state")]

    def __str__(self) -> str:
        return f"change #{self.pk} of {self.target} ({self.state})"

    def summary(self) -> str:
        parts = []
        change = self.change or {}
        if change.get("roles_add"):
            parts.append("roles + " + ", ".join(change["roles_add"]))
        if "department" in change:
            parts.append(f"department {self.before.get('department') or '(none)'} -> {change['department']}")
        if change.get("certifications_add"):
            parts.append("certifications + " + ", ".join(change["certifications_add"]))
        for flag, label in (
            ("is_active", "re-activated"),
            ("is_staff", "staff"),
            ("is_superuser", "superuser"),
        ):
            if change.get(flag):
                parts.append(label)
        return "; ".join(parts) or "(nothing)"


class ActionApproval(models.Model):
    """A second person's approval of one user's use of one action on one resource (two-person rule).

    Asked for when a policy rule says `require_approval: true` (e.g. break-glass, if the site wants
    it); in force from approval until `expires_at`. Written by access.approvals, read by decide().
    """

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    requester = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(
        max_length=255, help_text="The object's primary key, or the resource's name."
    )
    resource_label = models.CharField(max_length=255, help_text='As the policy names it, e.g. "study:12".')
    reason = models.CharField(max_length=1000)
    requested_at = models.DateTimeField(default=timezone.now)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [
            models.Index(
                fields=["requester", "action", "resource_type", "resource_id"], name="access_approval_lookup"
            ),
        ]

    def __str__(self) -> str:
        return f"approval #{self.pk}: {self.requester} {self.action} {self.resource_label} ({self.state})"

    @property
    def approver_label(self) -> str:
        return self.approver.get_username() if self.approver else "(deleted user)"

    @classmethod
    def in_force(cls, user, action: str, resource_type: str, resource_id: str):
        """The newest approval in force for this use, or None."""
        if user is None or not getattr(user, "pk", None):
            return None
        return (
            cls.objects.filter(
                requester=user,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                state=cls.State.APPROVED,
                expires_at__gt=timezone.now(),
            )
            .select_related("approver")
            .order_by("-decided_at")
            .first()
        )
