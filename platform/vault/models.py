"""The vault's own state: KEK rotations, so an interrupted one resumes instead of starting over, and
re-wrapped copies of sealed blobs that live where a rotation may not rewrite them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class KeyRotation(models.Model):
    """Rotation of KEK `key_name` from version `from_version` to `to_version` (vault.rotation)."""

    key_name = models.CharField(max_length=64)
    from_version = models.PositiveIntegerField()
    to_version = models.PositiveIntegerField()
    new_key_id = models.CharField(max_length=128)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    rewrapped = models.PositiveBigIntegerField(default=0, help_text="Sealed objects re-wrapped so far.")

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["key_name", "to_version"], name="vault_rotation_unique_version"),
        ]

    def __str__(self) -> str:
        state = "finished" if self.finished_at else "in progress"
        return f"{self.key_name} v{self.from_version} -> v{self.to_version} ({state})"


class SealedCopy(models.Model):
    """A sealed blob kept where a rotation may not rewrite it (inside an append-only, hashed trail
    payload), re-wrapped under a newer KEK version by `rotate_keys` (vault.rotation.store_copy).

    vault.envelope.open_sealed opens this copy when the original cannot be opened any more because
    its KEK version is gone (destroyed after the rotation, or left in the provider the data moved
    from). The copy opens only with the original's context; a format 2 copy must also carry the
    original's nonce and ciphertext (a re-wrap changes only the wrapped data key), so a copy swapped
    for another blob's is refused. A later rotation re-wraps the copy like any sealed column.
    """

    original_sha256 = models.CharField(max_length=64, unique=True)
    place = models.CharField(max_length=160, help_text="Where the original lives (e.g. a trail payload).")
    blob = models.BinaryField(help_text="vault.envelope sealed blob (format 2) of the original's data.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"re-wrapped copy of {self.original_sha256[:12]} ({self.place})"
