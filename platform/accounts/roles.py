"""The suite's roles. A role is a Django group of the same name; a user may hold several."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CLINICIAN = "clinician"
    RADIOLOGIST = "radiologist"
    COMPLIANCE_OFFICER = "compliance_officer"
    MAINTENANCE_ENGINEER = "maintenance_engineer"
    ML_ENGINEER = "ml_engineer"
    AUDITOR = "auditor"
    CLINICAL_AUDITOR = "clinical_auditor"
    AML_AUDITOR = "aml_auditor"
    PLANT_AUDITOR = "plant_auditor"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.CLINICIAN: "Clinician",
    Role.RADIOLOGIST: "Radiologist",
    Role.COMPLIANCE_OFFICER: "Compliance officer",
    Role.MAINTENANCE_ENGINEER: "Maintenance engineer",
    Role.ML_ENGINEER: "ML engineer",
    Role.AUDITOR: "Auditor",
    Role.CLINICAL_AUDITOR: "Clinical auditor",
    Role.AML_AUDITOR: "AML auditor",
    Role.PLANT_AUDITOR: "Plant auditor",
    Role.ADMIN: "Administrator",
}

# When a user holds several roles, the home page shown first follows this order.
ROLE_PRIORITY = [
    Role.ADMIN,
    Role.RADIOLOGIST,
    Role.CLINICIAN,
    Role.COMPLIANCE_OFFICER,
    Role.MAINTENANCE_ENGINEER,
    Role.ML_ENGINEER,
    Role.AUDITOR,
    Role.CLINICAL_AUDITOR,
    Role.AML_AUDITOR,
    Role.PLANT_AUDITOR,
]
