"""What the portal wires at start-up (PortalConfig.ready calls connect()): the platform's own pages
in the menus, its home panels, the Django admin's door and the sign-in hook.

The apps below the portal (access, audit) register nothing here: the portal, at the top of the
platform, knows their pages (no upward import). Apps above the platform register their own entries
in their AppConfig.ready().
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.signals import user_logged_in

from access.decisions import decide
from portal import health, pending
from portal.homes import HomePanel, register_panel
from portal.navigation import ACCOUNT, NavEntry, policy_allows, register
from portal.pending import has_something_to_decide
from portal.services import session_mark_signed_in


def connect() -> None:
    register_platform_pages()
    # The Django admin opens only when the access policy says so (one decision point: no
    # staff or superuser flag alone lets anyone in), and the menu asks the same question.
    admin.site.has_permission = admin_site_has_permission
    user_logged_in.connect(note_sign_in, dispatch_uid="portal.note_sign_in")
    register_panel(
        HomePanel(
            key="installation-health",
            title="Installation health",
            rows=health.installation_rows,
            order=5,
            allowed=policy_allows("view", "portal:health"),
        )
    )
    register_panel(
        HomePanel(
            key="waiting-for-approval",
            title="Waiting for your approval",
            rows=pending.approval_rows,
            order=1,
            more_url_name="access:approvals",
        )
    )


def admin_site_decision(user):
    return decide(user, "view", "portal:admin")


def admin_site_has_permission(request) -> bool:
    user = request.user
    return bool(user.is_active and user.is_staff and admin_site_decision(user).allowed)


def note_sign_in(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        session_mark_signed_in(request=request)


def register_platform_pages() -> None:
    """The platform's own pages, in the main and Account menus."""
    register(
        NavEntry(
            key="audit-trail",
            label="Decision trail",
            url_name="audit:event_list",
            description="Who decided what, when and why: filter, verify and export the tamper-evident trail.",
            order=80,
        )
    )
    register(
        NavEntry(
            key="access-explain",
            label="Access policy",
            url_name="access:explain",
            description="Ask the access policy why a user may or may not do something.",
            order=85,
        )
    )
    register(
        NavEntry(
            key="access-approvals",
            label="Approvals",
            url_name="access:approvals",
            description="Second-person approvals waiting for you, and your own requests.",
            order=86,
            allowed=has_something_to_decide,
        )
    )
    register(
        NavEntry(
            key="admin",
            label="Administration",
            url_name="admin:index",
            description="Users, roles and attributes, organisation units.",
            order=900,
            check=admin_site_decision,
            allowed=lambda user: user.is_staff,
        )
    )
    for key, label, url_name, order in (
        ("account-tokens", "API tokens", "portal:api_token", 10),
        ("account-password", "Change password", "portal:password_change", 20),
        ("account-sessions", "Active sessions", "portal:sessions", 30),
    ):
        register(NavEntry(key=key, label=label, url_name=url_name, order=order, menu=ACCOUNT))
