"""The parsed form of a policy: rules, resource patterns, conditions, and how a subject is read.

Pure data and matching; no database access. `access.loader` builds these from YAML,
`access.decisions` evaluates them for one resource, `access.querysets` compiles them to SQL.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property

ALLOW, DENY = "allow", "deny"
ANY_SUBJECT = "*"

# Subject attributes a condition may name. Single-valued ones compare by equality; the
# multi-valued ones (a user holds several roles and certifications) by membership.
SINGLE_VALUED_SUBJECT_ATTRIBUTES = ("department", "site", "username")
MULTI_VALUED_SUBJECT_ATTRIBUTES = ("certification", "role")
SUBJECT_ATTRIBUTES = SINGLE_VALUED_SUBJECT_ATTRIBUTES + MULTI_VALUED_SUBJECT_ATTRIBUTES


def attribute_text(value: object) -> str | None:
    """How an attribute value is compared: as text; None (and "") means "no value"."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    text = str(value)
    return text or None


class Subject:
    """The attributes of the user a decision is about, read once per decision."""

    def __init__(self, user):
        self.user = user
        self.authenticated = bool(user is not None and user.is_authenticated and user.is_active)

    @cached_property
    def username(self) -> str:
        return self.user.get_username() if self.authenticated else ""

    @cached_property
    def roles(self) -> frozenset[str]:
        return frozenset(self.user.role_names()) if self.authenticated else frozenset()

    def value(self, attribute: str) -> str | frozenset[str] | None:
        """A single-valued attribute as text (None when empty), a multi-valued one as a set."""
        if not self.authenticated:
            return frozenset() if attribute in MULTI_VALUED_SUBJECT_ATTRIBUTES else None
        if attribute == "role":
            return self.roles
        if attribute == "certification":
            return frozenset(item for item in (self.user.certifications or []) if item)
        if attribute == "username":
            return self.username or None
        return attribute_text(getattr(self.user, attribute, None))

    def label(self) -> str:
        return self.username or "anonymous"


@dataclass(frozen=True)
class ResourcePattern:
    """`type:name-glob`, e.g. `study:*` or `model:finance_*`. Wildcards only in the name part."""

    resource_type: str
    name_glob: str

    @property
    def matches_every_name(self) -> bool:
        return self.name_glob == "*"

    def matches(self, resource_type: str, name: str) -> bool:
        return resource_type == self.resource_type and fnmatchcase(name, self.name_glob)

    def __str__(self) -> str:
        return f"{self.resource_type}:{self.name_glob}"


@dataclass(frozen=True)
class Condition:
    """One `key: value` line of a rule's conditions.

    side "subject": the subject's `attribute` must be one of `constants`.
    side "resource": the resource's `attribute` must be one of `constants`, or, when
    `subject_attribute` is set, equal to that attribute of the subject.
    """

    side: str
    attribute: str
    constants: tuple[str, ...] = ()
    subject_attribute: str | None = None
    line: int = 0

    @property
    def key(self) -> str:
        return f"{self.side}.{self.attribute}" if self.side == "resource" else self.attribute

    @property
    def expected_text(self) -> str:
        if self.subject_attribute:
            return f"subject.{self.subject_attribute}"
        return self.constants[0] if len(self.constants) == 1 else "one of " + ", ".join(self.constants)

    def __str__(self) -> str:
        return f"{self.key}: {self.expected_text}"

    @property
    def involves_resource(self) -> bool:
        return self.side == "resource"


def subject_value_matches(subject_value: str | frozenset[str] | None, candidates: tuple[str, ...]) -> bool:
    if isinstance(subject_value, frozenset):
        return bool(subject_value.intersection(candidates))
    return subject_value is not None and subject_value in candidates


@dataclass(frozen=True)
class Rule:
    name: str
    effect: str
    subjects: tuple[str, ...]
    resources: tuple[ResourcePattern, ...]
    actions: frozenset[str]
    conditions: tuple[Condition, ...] = ()
    require_grant: bool = False
    record_allowed: bool = False
    description: str = ""
    line: int = 0
    # Allows only once a second person approved this use (access.approvals.action_approval_*).
    require_approval: bool = False

    @property
    def is_deny(self) -> bool:
        return self.effect == DENY

    def matching_subject(self, subject: Subject) -> str | None:
        """The subject entry that admits `subject` ("*", "role:x" or "user:y"), or None."""
        if not subject.authenticated:
            return None
        for entry in self.subjects:
            kind, _, value = entry.partition(":")
            if (
                entry == ANY_SUBJECT
                or (kind == "role" and value in subject.roles)
                or (kind == "user" and value == subject.username)
            ):
                return entry
        return None

    def patterns_for(self, resource_type: str) -> list[ResourcePattern]:
        return [pattern for pattern in self.resources if pattern.resource_type == resource_type]

    def matching_pattern(self, resource_type: str, name: str) -> ResourcePattern | None:
        return next((p for p in self.resources if p.matches(resource_type, name)), None)


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...]
    source: str = "<string>"
    sha256: str = ""
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        for rule in self.rules:
            for resource_type in {pattern.resource_type for pattern in rule.resources}:
                for action in rule.actions:
                    self._index.setdefault((resource_type, action), []).append(rule)

    def rules_for(self, resource_type: str, action: str) -> list[Rule]:
        """The rules that name this resource type and action, in file order."""
        return self._index.get((resource_type, action), [])

    def rule(self, name: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.name == name), None)
