"""What each role's home page says. The cards come from the navigation registry."""

from accounts.roles import Role

ROLE_HOMES = {
    Role.CLINICIAN: "Studies from your department, and answers grounded in the study itself.",
    Role.RADIOLOGIST: "Your department's studies, de-identification review and grounded questions.",
    Role.COMPLIANCE_OFFICER: "Screening alerts, cases and the decision trail behind every alert.",
    Role.MAINTENANCE_ENGINEER: "Asset health, failure predictions and work orders for your site.",
    Role.ML_ENGINEER: "Local models, fine-tune jobs, adapters and serving speed.",
    Role.AUDITOR: "The tamper-evident decision trail: who decided what, when, and why.",
    Role.ADMIN: "Users, roles, access policy and the health of the installation.",
}
