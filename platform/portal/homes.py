"""What each role's home page says. The cards come from the navigation registry."""

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse

from accounts.roles import Role

ROLE_HOMES = {
    Role.CLINICIAN: "Studies from your department, and answers grounded in the study itself.",
    Role.RADIOLOGIST: "Your department's studies, de-identification review and grounded questions.",
    Role.COMPLIANCE_OFFICER: "Screening alerts, cases and the decision trail behind every alert.",
    Role.MAINTENANCE_ENGINEER: "Asset health, failure predictions and work orders for your site.",
    Role.ML_ENGINEER: "Local models, fine-tune jobs, adapters and serving speed.",
    Role.AUDITOR: "The tamper-evident decision trail: who decided what, when, and why.",
    Role.CLINICAL_AUDITOR: "The decision trail of the clinical side: studies, questions, break-glass.",
    Role.AML_AUDITOR: "The decision trail of AML screening, and every team's alerts and cases.",
    Role.PLANT_AUDITOR: "The decision trail of the plants: recordings, predictions and work orders.",
    Role.ADMIN: "Users, roles, access policy and the health of the installation.",
}


# --- panels ------------------------------------------------------------------------------------
# Apps add what a person wants to see first on their home page (recent studies, running jobs...)
# with register_panel() in AppConfig.ready(). A panel's `rows(user)` must scope its own query by the
# access policy (access.querysets.restrict): the home page shows nothing the user could not open.


@dataclass(frozen=True)
class HomeRow:
    label: str
    url: str
    detail: str = ""
    badge: str = ""
    badge_kind: str = ""  # "ok", "warn" or "bad": the badge's colour


@dataclass(frozen=True)
class HomePanel:
    key: str
    title: str
    rows: Callable  # rows(user) -> list[HomeRow]; an empty list hides the panel
    order: int = 100
    more_url_name: str = ""
    empty_text: str = ""  # shown when there are no rows (otherwise the panel is hidden)
    allowed: Callable | None = None  # allowed(user) -> bool, e.g. portal.navigation.policy_allows(...)


_PANELS: dict[str, HomePanel] = {}


def register_panel(panel: HomePanel) -> None:
    _PANELS[panel.key] = panel


def panels_for(user) -> list[dict]:
    """The panels with something to show this user, in order, each with its rows."""
    shown = []
    for panel in sorted(_PANELS.values(), key=lambda p: (p.order, p.title)):
        if panel.allowed is not None and not panel.allowed(user):
            continue
        rows = panel.rows(user)
        if rows or panel.empty_text:
            shown.append(
                {
                    "key": panel.key,
                    "title": panel.title,
                    "rows": rows,
                    "more_url": reverse(panel.more_url_name) if panel.more_url_name else "",
                    "empty_text": panel.empty_text,
                }
            )
    return shown
