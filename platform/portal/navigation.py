"""Navigation and home-page cards, registered by apps above the platform in AppConfig.ready() (the
platform's own pages are registered by the portal app, the top of the platform).

One check, shared by the menu and the page: an entry is shown exactly when its page would answer.
The page declares the policy question it asks before anything else (`@policy_required(action,
"type:name")` or PolicyRequiredMixin, see access.web.page_policy_of); the menu resolves the entry's
URL to that view and asks access.decisions.decide() the same question. A page that declares no
question (the Django admin) is given one with `check`, and the page must ask it too. An optional
`allowed(user)` can only narrow further (e.g. hide an entry while there is nothing to show).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from access.decisions import decide
from access.web import page_policy_of

MAIN, ACCOUNT = "main", "account"


class UndeclaredPage(LookupError):
    """A menu entry points at a view that declares no policy question: the menu cannot know whether
    the page would answer, so it is never shown (and tests/portal fail, naming the entry)."""


@dataclass(frozen=True)
class NavEntry:
    key: str
    label: str
    url_name: str
    description: str = ""
    order: int = 100
    menu: str = MAIN  # MAIN: the top bar; ACCOUNT: the account menu every signed-in user has
    # check(user) -> Decision, for a page that declares no policy question itself (see module doc).
    check: Callable | None = field(default=None, compare=False)
    # Optional further narrowing, e.g. lambda user: bool(things_to_show(user)).
    allowed: Callable | None = field(default=None, compare=False)
    # Not consulted: the page's policy question decides who sees the entry (no role lists here).
    roles: frozenset[str] = frozenset()

    @property
    def url(self) -> str:
        return reverse(self.url_name)

    def policy_question(self) -> tuple[str, str]:
        """(action, "type:name") the page asks; UndeclaredPage when it asks none."""
        try:
            view = resolve(self.url).func
        except Resolver404:
            raise UndeclaredPage(f"Menu entry {self.key!r}: {self.url} resolves to no view.") from None
        question = page_policy_of(view)
        if question is None:
            raise UndeclaredPage(
                f"Menu entry {self.key!r}: the view at {self.url} declares no policy question "
                "(use access.web.policy_required or PolicyRequiredMixin, or give the entry a check)."
            )
        return question

    def decision(self, user):
        """The access policy's Decision on opening this entry's page."""
        if self.check is not None:
            return self.check(user)
        action, resource = self.policy_question()
        return decide(user, action, resource)

    def visible_to(self, user) -> bool:
        if not user.is_authenticated:
            return False
        try:
            if not self.decision(user).allowed:
                return False
        except UndeclaredPage:
            return False
        return self.allowed(user) if self.allowed else True


def policy_allows(action: str, resource: str) -> Callable:
    """A visibility check that asks the access policy, e.g. policy_allows("view", "portal:health")."""

    def allowed(user) -> bool:
        return decide(user, action, resource).allowed

    return allowed


_REGISTRY: dict[str, NavEntry] = {}


def register(entry: NavEntry) -> None:
    _REGISTRY[entry.key] = entry


def entries() -> list[NavEntry]:
    return sorted(_REGISTRY.values(), key=lambda e: (e.order, e.label))


def items_for(user, current_path: str = "", *, menu: str = MAIN) -> list[dict]:
    items = []
    for entry in entries():
        if entry.menu != menu:
            continue
        try:
            url = entry.url
        except NoReverseMatch:
            continue  # the app's URLs are not mounted in this configuration
        if not entry.visible_to(user):
            continue
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
