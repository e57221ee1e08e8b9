"""The demo organisation and one demo user per role. Demo-only: never use these accounts in production."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.models import OrgUnit, User
from accounts.roles import Role

ORG_UNITS = [
    (OrgUnit.Kind.DEPARTMENT, "radiology", "Radiology"),
    (OrgUnit.Kind.DEPARTMENT, "cardiology", "Cardiology"),
    (OrgUnit.Kind.TEAM, "aml-eu", "AML team EU"),
    (OrgUnit.Kind.TEAM, "aml-us", "AML team US"),
    (OrgUnit.Kind.SITE, "site-a", "Plant site A"),
    (OrgUnit.Kind.SITE, "site-b", "Plant site B"),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    roles: tuple[Role, ...]
    department: str = ""
    site: str = ""
    certifications: tuple[str, ...] = ()


DEMO_USERS = [
    DemoUser("clinician", "Clara", "Reyes", (Role.CLINICIAN,), department="radiology"),
    DemoUser("cardiologist", "Colin", "Hart", (Role.CLINICIAN,), department="cardiology"),
    DemoUser(
        "radiologist",
        "Rosa",
        "Lind",
        (Role.RADIOLOGIST,),
        department="radiology",
        certifications=("board_certified",),
    ),
    DemoUser("compliance", "Carl", "Ostrom", (Role.COMPLIANCE_OFFICER,), department="aml-eu"),
    DemoUser("compliance2", "Cora", "Lind", (Role.COMPLIANCE_OFFICER,), department="aml-eu"),
    DemoUser("compliance_us", "Cole", "Baker", (Role.COMPLIANCE_OFFICER,), department="aml-us"),
    DemoUser("maintenance", "Mia", "Tanaka", (Role.MAINTENANCE_ENGINEER,), site="site-a"),
    DemoUser("mlengineer", "Max", "Lerner", (Role.ML_ENGINEER,), department="radiology"),
    DemoUser("auditor", "Ada", "Quist", (Role.AUDITOR,)),
    # one domain's trail each (issue 11)
    DemoUser("clinical_auditor", "Cleo", "Marsh", (Role.CLINICAL_AUDITOR,)),
    DemoUser("aml_auditor", "Abel", "Nord", (Role.AML_AUDITOR,)),
    DemoUser("plant_auditor", "Pia", "Holm", (Role.PLANT_AUDITOR,)),
    DemoUser("admin", "Alex", "Admin", (Role.ADMIN,)),
]


def demo_password() -> str:
    return "demo-" + secrets.token_urlsafe(9)


@transaction.atomic
def create_demo_organisation(*, password: str | None = None) -> list[tuple[str, str | None]]:
    """Create missing org units and demo users. Returns (username, password or None if it existed)."""
    for kind, code, name in ORG_UNITS:
        OrgUnit.objects.get_or_create(code=code, defaults={"kind": kind, "name": name})
    created = []
    for spec in DEMO_USERS:
        user, is_new = User.objects.get_or_create(
            username=spec.username,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "email": f"{spec.username}@demo.suite.local",
                "department": spec.department,
                "site": spec.site,
                "certifications": list(spec.certifications),
                "is_staff": Role.ADMIN in spec.roles,
                "is_superuser": Role.ADMIN in spec.roles,
            },
        )
        if is_new:
            secret = password or demo_password()
            user.set_password(secret)
            user.save(update_fields=["password"])
            user.groups.set([Group.objects.get_or_create(name=role.value)[0] for role in spec.roles])
        created.append((spec.username, secret if is_new else None))
    return created
