"""The decision trail: append-only, hash-chained events, per-chain heads and signed checkpoints.

Events are written only by `audit.services.record`. The ORM refuses to change or delete them;
on PostgreSQL triggers refuse it too (migration 0002). Tampering that gets past both (raw SQL
with the triggers disabled) breaks the hash chain and is named by `manage.py verify_trail`.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.db import models

from audit.canonical import GENESIS_HASH, canonical_event, chain_hash


class AppendOnlyError(Exception):
    """Somebody tried to change or delete a trail record through the ORM."""


class Outcome(models.TextChoices):
    ALLOWED = "allowed", "Allowed"
    DENIED = "denied", "Denied"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ActorKind(models.TextChoices):
    USER = "user", "User"
    TOKEN = "token", "API token"
    SYSTEM = "system", "System"
    ANONYMOUS = "anonymous", "Anonymous"


class AppendOnlyQuerySet(models.QuerySet):
    """Reads as usual; bulk writes that would bypass `record` or rewrite history raise AppendOnlyError."""

    # The one change allowed: deleting a user detaches their events (actor_user -> NULL, which is
    # what on_delete=SET_NULL does). The hashed actor_user_ref keeps the user's key (version 2):
    # verification accepts a NULL link only when that user no longer exists.
    _DETACH_USER = {"actor_user": None}

    def update(self, **kwargs):
        if kwargs == self._DETACH_USER and self.model is Event:
            return super().update(**kwargs)
        raise AppendOnlyError(f"{self.model._meta.label} records are append-only: update() is refused.")

    def delete(self):
        raise AppendOnlyError(f"{self.model._meta.label} records are append-only: delete() is refused.")

    def _raw_delete(self, using):
        raise AppendOnlyError(f"{self.model._meta.label} records are append-only: delete() is refused.")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError(f"{self.model._meta.label} records are append-only: bulk_update() is refused.")

    def bulk_create(self, objs, *args, **kwargs):
        raise AppendOnlyError(
            f"{self.model._meta.label} records are written one at a time by audit.services: "
            "bulk_create() is refused."
        )


class AppendOnlyModel(models.Model):
    """Saving a new row is allowed only for instances the trail services marked as ready."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True
        # Django's own deletion and refresh paths use the base manager: make them refuse too.
        base_manager_name = "objects"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(
                f"{self._meta.label} records are append-only: an existing one cannot be saved."
            )
        if not getattr(self, "_written_by_trail_service", False):
            raise AppendOnlyError(
                f"{self._meta.label} records are written by audit.services, not saved directly."
            )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{self._meta.label} records are append-only: delete() is refused.")


class Event(AppendOnlyModel):
    chain = models.CharField(max_length=64)
    sequence = models.PositiveBigIntegerField(help_text="Gapless within the chain, starting at 1.")
    timestamp = models.DateTimeField()
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="trail_events",
        help_text="Link to the user; the hash covers actor_user_ref, the same key, which deletion keeps.",
    )
    actor_user_ref = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Primary key of the acting user (hashed from hash version 2)."
    )
    hash_version = models.PositiveSmallIntegerField(
        default=1, help_text="Which fields the hash covers (audit.canonical); 1 for events before version 2."
    )
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_label = models.CharField(
        max_length=255, help_text='Username, or a system actor like "task:tuning.run".'
    )
    action = models.CharField(max_length=128)
    resource_type = models.CharField(max_length=64)
    resource_id = models.CharField(max_length=255, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    policy = models.CharField(max_length=255, blank=True, help_text="The policy or rule that decided.")
    payload_json = models.TextField(help_text="What the decision was based on, as canonical JSON.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta(AppendOnlyModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["chain", "sequence"], name="audit_event_unique_sequence"),
        ]
        indexes = [
            models.Index(fields=["chain", "timestamp"], name="audit_event_chain_time"),
            models.Index(fields=["timestamp"], name="audit_event_time"),
            models.Index(fields=["action"], name="audit_event_action"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_event_resource"),
            models.Index(fields=["actor_label"], name="audit_event_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.chain}#{self.sequence} {self.actor_label} {self.action} {self.outcome}"

    @property
    def payload(self) -> dict:
        return json.loads(self.payload_json)

    def canonical_bytes(self) -> bytes:
        return canonical_event(
            chain=self.chain,
            sequence=self.sequence,
            timestamp=self.timestamp,
            actor_kind=self.actor_kind,
            actor_label=self.actor_label,
            action=self.action,
            resource_type=self.resource_type,
            resource_id=self.resource_id,
            outcome=self.outcome,
            policy=self.policy,
            payload=self.payload,
            hash_version=self.hash_version,
            actor_user_ref=self.actor_user_ref,
        )

    def computed_hash(self) -> str:
        return chain_hash(self.prev_hash, self.canonical_bytes())


class ChainHead(models.Model):
    """The last event of each chain. Writers lock this row, so appends to one chain serialise.

    It also lets verify_trail notice events deleted from, or appended behind the service to,
    the end of a chain. On PostgreSQL a trigger lets it only advance, over events that exist.
    """

    chain = models.CharField(max_length=64, primary_key=True)
    sequence = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chain} @ {self.sequence}"


class Checkpoint(AppendOnlyModel):
    """A signed statement: chain `chain` had `size` events ending in `head_hash` at `signed_at`."""

    chain = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    key_provider = models.CharField(max_length=32)
    key_name = models.CharField(max_length=64)
    key_id = models.CharField(max_length=128)
    algorithm = models.CharField(max_length=32)
    signature = models.TextField(help_text="Base64 signature over audit.canonical.checkpoint_message(...).")

    class Meta(AppendOnlyModel.Meta):
        constraints = [
            models.UniqueConstraint(fields=["chain", "size"], name="audit_checkpoint_unique_size"),
        ]
        ordering = ["chain", "size"]

    def __str__(self) -> str:
        return f"checkpoint #{self.pk} of {self.chain} at {self.size}"


class RewrappedTexts(models.Model):
    """The sealed texts of an event's payload, re-wrapped under a newer KEK version by a rotation.

    The payload itself is append-only and hashed, so its blob keeps naming the retired KEK version;
    audit.sealing opens this copy instead, and checks what it opens against the digests in the
    hashed payload. Not part of the trail: deleting a row only sends readers back to the payload's
    own blob (which then needs the retired version); a row swapped for another text fails the digests.
    """

    event = models.OneToOneField(Event, on_delete=models.PROTECT, related_name="rewrapped_texts")
    blob = models.BinaryField(help_text="vault.envelope sealed blob (format 2) of the payload's texts.")
    rewrapped_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"re-wrapped texts of event #{self.event_id}"
