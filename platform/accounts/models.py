from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models

from accounts.roles import ROLE_PRIORITY, Role


def _validate_certifications(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ValidationError('Certifications must be a list of non-empty strings, e.g. ["board_certified"].')


class OrgUnit(models.Model):
    """A department (hospital), team (AML) or site (plant). Users and records point at its code."""

    class Kind(models.TextChoices):
        DEPARTMENT = "department", "Department"
        TEAM = "team", "Team"
        SITE = "site", "Site"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)

    class Meta:
        ordering = ["kind", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display().lower()})"


class User(AbstractUser):
    """A person using the suite. Roles are groups; the fields below are ABAC attributes."""

    department = models.SlugField(
        max_length=64, blank=True, help_text="Department or team code, e.g. radiology, aml-eu."
    )
    site = models.SlugField(max_length=64, blank=True, help_text="Site code, e.g. site-a.")
    certifications = models.JSONField(
        default=list, blank=True, validators=[_validate_certifications], help_text='e.g. ["board_certified"]'
    )

    def role_names(self) -> set[str]:
        cached = getattr(self, "_role_names", None)
        if cached is None:
            cached = set(self.groups.values_list("name", flat=True)) if self.pk else set()
            self._role_names = cached
        return cached

    def has_role(self, role: Role | str) -> bool:
        return str(role) in self.role_names()

    @property
    def roles(self) -> list[Role]:
        names = self.role_names()
        return [role for role in ROLE_PRIORITY if role.value in names]

    @property
    def primary_role(self) -> Role | None:
        roles = self.roles
        return roles[0] if roles else None
