"""The vault's own state: KEK rotations, so an interrupted one resumes instead of starting over."""

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
