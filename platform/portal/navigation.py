"""Navigation and home-page cards, registered by each app in its AppConfig.ready().

An entry is shown only to users whose roles may use it; when the entry names a policy
(action, resource), the access policy decides, so the menu never offers a page that would 403.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str
    url_name: str
    roles: frozenset[str] = frozenset()
    description: str = ""
    order: int = 100
    # Optional finer check, e.g. lambda user: decide(user, "read", "trail:suite").allowed
    allowed: Callable | None = field(default=None, compare=False)

    def visible_to(self, user) -> bool:
        if not user.is_authenticated:
            return False
        if self.roles and not (self.roles & user.role_names()) and not user.is_superuser:
            return False
        return self.allowed(user) if self.allowed else True

    @property
    def url(self) -> str:
        return reverse(self.url_name)


def policy_allows(action: str, resource: str) -> Callable:
    """A visibility check that asks the access policy, e.g. policy_allows("view", "portal:models")."""

    def allowed(user) -> bool:
        from access.decisions import decide

        return decide(user, action, resource).allowed

    return allowed


_REGISTRY: dict[str, NavEntry] = {}


def register(entry: NavEntry) -> None:
    _REGISTRY[entry.key] = entry


def entries() -> list[NavEntry]:
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.label))


def items_for(user, current_path: str = "") -> list[dict]:
    items = []
    for entry in entries():
        if not entry.visible_to(user):
            continue
        try:
            url = entry.url
        except NoReverseMatch:
            continue  # the app's URLs are not mounted in this configuration
        items.append(
            {
                "key": entry.key,
                "label": entry.label,
                "url": url,
                "description": entry.description,
                "active": bool(current_path) and current_path.startswith(url) and url != "/",
            }
        )
    return items
