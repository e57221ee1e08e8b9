"""The policy as a database filter: `restrict(queryset, user, action)` keeps exactly the rows
`decide(user, action, row)` would allow, without loading the others.

The applicable rules are compiled once per call (compare NetBox's RestrictedQuerySet.restrict):
- a rule whose subjects do not admit the user is dropped; subject-only conditions are evaluated
  now and either drop the rule or vanish;
- resource patterns become filters on the name field (`policy_field_map["name"]`), conditions on
  resource attributes become `Q(field__in=constants)` or `Q(field=<the user's value>)`;
- require_grant rules are limited to the objects the user holds a grant for (guardian's direct
  foreign-key tables or its generic tables);
- the result is (any allow rule) AND NOT (any deny rule); with no allow rule, no rows.

tests/access/test_restrict.py checks object by object that this agrees with decide().
"""

from __future__ import annotations

import re
from functools import reduce
from operator import and_, or_

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import Q, QuerySet
from django.utils import timezone

from access.grants import granted_pks
from access.models import ActionApproval
from access.policy import active_policy
from access.resources import field_map_of, resource_type_of
from access.rules import Condition, Policy, ResourcePattern, Rule, Subject, subject_value_matches

# Q() is "no condition" and vanishes when OR-ed (Q() | Q(x) == Q(x)), so spell out true and false.
ALWAYS = Q(pk__isnull=False)
NEVER = Q(pk__in=[])


def restrict(queryset: QuerySet, user, action: str, *, policy: Policy | None = None) -> QuerySet:
    """`queryset` narrowed to the objects `user` may `action`."""
    condition = policy_filter(queryset.model, user, action, policy=policy)
    return queryset.none() if condition is None else queryset.filter(condition)


def policy_filter(model: type[models.Model], user, action: str, *, policy: Policy | None = None) -> Q | None:
    """The Q that selects the `model` rows `user` may `action`, or None when it selects none."""
    policy = policy or active_policy()
    resource_type = resource_type_of(model)
    if resource_type is None:
        raise TypeError(f"{model._meta.label} is not a policy resource (no policy_resource_type).")
    subject = Subject(user)
    if not subject.authenticated:
        return None
    field_map = field_map_of(model)
    allows, denies = [], []
    grants: set | None = None
    for rule in policy.rules_for(resource_type, action):
        if rule.matching_subject(subject) is None:
            continue
        rule_filter = _rule_filter(rule, resource_type, subject, field_map, model)
        if rule_filter is None:
            continue
        if rule.is_deny:
            denies.append(rule_filter)
            continue
        if rule.require_grant:
            grants = granted_pks(user, action, model) if grants is None else grants
            if not grants:
                continue
            rule_filter &= Q(pk__in=grants)
        if rule.require_approval:
            approved = approved_pks(user, action, resource_type)
            if not approved:
                continue
            rule_filter &= Q(pk__in=approved)
        allows.append(rule_filter)
    if not allows:
        return None
    combined = reduce(or_, allows)
    if denies:
        combined &= ~reduce(or_, denies)
    return combined


def approved_pks(user, action: str, resource_type: str) -> list[str]:
    """Objects of `resource_type` a second person's approval in force lets `user` `action`."""
    return list(
        ActionApproval.objects.filter(
            requester=user,
            action=action,
            resource_type=resource_type,
            state=ActionApproval.State.APPROVED,
            expires_at__gt=timezone.now(),
        ).values_list("resource_id", flat=True)
    )


def _rule_filter(rule: Rule, resource_type: str, subject: Subject, field_map: dict, model) -> Q | None:
    """The rows the rule covers for this subject; None when it covers none."""
    parts = [_names_filter(rule.patterns_for(resource_type), field_map, model, rule)]
    for condition in rule.conditions:
        if condition.side == "subject":
            if not subject_value_matches(subject.value(condition.attribute), condition.constants):
                return None
            continue
        parts.append(_resource_condition_filter(condition, subject, field_map, model, rule))
    if any(part is NEVER for part in parts):
        return None
    return reduce(and_, parts)


def _names_filter(patterns: list[ResourcePattern], field_map: dict, model, rule: Rule) -> Q:
    if any(pattern.matches_every_name for pattern in patterns):
        return ALWAYS
    name_field = field_map.get("name")
    if not name_field:
        raise ImproperlyConfigured(
            f"Rule '{rule.name}' names {model._meta.label} objects by pattern, but the model maps no field "
            "to the policy name: add 'name' to its policy_field_map."
        )
    filters = [
        Q(**{name_field: pattern.name_glob})
        if not any(char in pattern.name_glob for char in "*?")
        else Q(**{f"{name_field}__regex": glob_to_regex(pattern.name_glob)})
        for pattern in patterns
    ]
    return reduce(or_, filters)


def _resource_condition_filter(
    condition: Condition, subject: Subject, field_map: dict, model, rule: Rule
) -> Q:
    field = field_map.get(condition.attribute)
    if not field:
        raise ImproperlyConfigured(
            f"Rule '{rule.name}' (line {rule.line}) tests resource.{condition.attribute}, which "
            f"{model._meta.label}.policy_field_map does not map to a field."
        )
    if not condition.subject_attribute:
        return Q(**{f"{field}__in": list(condition.constants)})
    value = subject.value(condition.subject_attribute)
    if isinstance(value, frozenset):
        return Q(**{f"{field}__in": sorted(value)}) if value else NEVER
    return Q(**{field: value}) if value is not None else NEVER


def glob_to_regex(glob: str) -> str:
    """An anchored regular expression, valid for SQLite (Python re) and PostgreSQL, matching as
    fnmatch.fnmatchcase does for the characters a policy name pattern may hold."""
    translated = "".join(".*" if char == "*" else "." if char == "?" else re.escape(char) for char in glob)
    return f"^{translated}$"
