"""The one decision function: may `user` do `action` on `resource`, and why.

    decide(user, action, resource) -> Decision

Order of evaluation (POLICY.md states the same in prose):
1. Only the rules that name the resource's type and the action are candidates; a rule applies
   when one of its subjects admits the user, one of its resource patterns matches the resource's
   name and all of its conditions hold. Anonymous and inactive users match no subject.
2. Any applicable deny rule denies, whatever else applies (grants included).
3. Otherwise the first applicable allow rule without require_grant allows.
   If that rule says require_approval, it allows only while a second person's approval of this
   user's use of the action on this resource is in force (access.approvals); otherwise: denied,
   with a reason saying how to ask for one.
4. Otherwise the first applicable allow rule with require_grant allows if the user holds an
   explicit per-object grant for the action on that object (django-guardian, to the user or to
   one of their groups).
5. Otherwise: denied. No rule, no access; superusers get no bypass.

decide() has no side effects (it only reads grants), so explain can call it freely; the
enforcement points (access.enforcement.check, access.drf, access.mixins) write the trail.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from django.db import models

from access import actions as vocabulary
from access.grants import find_grant
from access.models import ActionApproval
from access.policy import active_policy
from access.resources import Resource, resource_for
from access.rules import Condition, Policy, Rule, Subject, attribute_text, subject_value_matches


@dataclass(frozen=True)
class ConditionResult:
    rule: str
    condition: str
    expected: str
    actual: str
    passed: bool

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "condition": self.condition,
            "expected": self.expected,
            "actual": self.actual,
            "passed": self.passed,
        }


@dataclass(frozen=True)
class RuleEvaluation:
    """How one candidate rule fared: why it did or did not apply."""

    rule: str
    effect: str
    line: int
    subject: str | None
    resource_pattern: str | None
    conditions: tuple[ConditionResult, ...]
    require_grant: bool
    grant: str | None
    applies: bool
    note: str

    def as_dict(self) -> dict:
        return {
            "rule": self.rule,
            "effect": self.effect,
            "line": self.line,
            "matched_subject": self.subject,
            "matched_resource": self.resource_pattern,
            "conditions": [condition.as_dict() for condition in self.conditions],
            "require_grant": self.require_grant,
            "grant": self.grant,
            "applies": self.applies,
            "note": self.note,
        }


@dataclass(frozen=True)
class Decision:
    allowed: bool
    policy: str | None
    reason: str
    grant: str | None = None
    conditions: tuple[ConditionResult, ...] = ()
    action: str = ""
    resource: str = ""
    subject: str = ""
    evaluations: tuple[RuleEvaluation, ...] = field(default=(), repr=False)
    record_allowed: bool = False
    # The deciding rule asks for a second person's approval: the id of the approval in force, or
    # None when there is none (then the decision is a denial a person can fix by asking for one).
    approval: int | None = None
    approval_required: bool = False

    def __bool__(self) -> bool:
        return self.allowed

    def as_dict(self) -> dict:
        return {
            "allowed": self.allowed,
            "policy": self.policy,
            "reason": self.reason,
            "grant": self.grant,
            "subject": self.subject,
            "action": self.action,
            "resource": self.resource,
            "conditions": [condition.as_dict() for condition in self.conditions],
            "rules": [evaluation.as_dict() for evaluation in self.evaluations],
        }


def decide(
    user,
    action: str,
    resource: str | Resource | models.Model,
    *,
    policy: Policy | None = None,
    approval_needed: bool = True,
) -> Decision:
    """The policy's answer for (user, action, resource). See the module docstring for the order.

    approval_needed=False answers as if a required second-person approval were in force (who may
    approve asks this: a peer who could act themselves).
    """
    policy = policy or active_policy()
    target = resource_for(resource)
    subject = Subject(user)
    candidates = policy.rules_for(target.resource_type, action)
    evaluations: list[RuleEvaluation] = []
    deny = allow = grant_rule = None
    grant = None
    for rule in candidates:
        evaluation = _evaluate(rule, subject, target)
        if evaluation.applies and rule.is_deny and deny is None:
            deny = rule
        elif evaluation.applies and not rule.is_deny and not rule.require_grant and allow is None:
            allow = rule
        evaluations.append(evaluation)
    # Grants are looked up only when they could change the answer: no deny, no plain allow.
    if deny is None and allow is None:
        for index, evaluation in enumerate(evaluations):
            rule = candidates[index]
            if not (evaluation.applies and rule.require_grant):
                continue
            grant = find_grant(user, action, target.instance)
            evaluations[index] = _with_grant(evaluation, grant)
            if grant:
                grant_rule = rule
            break

    outcome = _Outcome(
        action=action, target=target, subject=subject, evaluations=tuple(evaluations), grant=grant
    )
    if deny is not None:
        return outcome.decision(
            False, deny, f"Denied by rule '{deny.name}', which overrides any allow rule or grant."
        )
    if allow is not None and allow.require_approval and approval_needed:
        approval = ActionApproval.in_force(user, action, target.resource_type, target.identifier)
        if approval is None:
            return replace(
                outcome.decision(
                    False,
                    allow,
                    f"Rule '{allow.name}' allows '{action}' on {target} only with a second person's approval, "
                    "and none is in force: ask for one (Access approvals) with your reason.",
                ),
                approval_required=True,
            )
        return replace(
            outcome.decision(
                True,
                allow,
                f"Allowed by rule '{allow.name}' with approval #{approval.pk} by {approval.approver_label}.",
            ),
            approval=approval.pk,
            approval_required=True,
        )
    if allow is not None:
        return outcome.decision(True, allow, f"Allowed by rule '{allow.name}'.")
    if grant_rule is not None:
        return outcome.decision(
            True, grant_rule, f"Allowed by rule '{grant_rule.name}' with the grant {grant}."
        )
    return outcome.decision(False, None, _denial_reason(subject, action, target, evaluations))


@dataclass(frozen=True)
class _Outcome:
    action: str
    target: Resource
    subject: Subject
    evaluations: tuple[RuleEvaluation, ...]
    grant: str | None

    def decision(self, allowed: bool, rule: Rule | None, reason: str) -> Decision:
        # The conditions that explain the answer: the deciding rule's, or, when no rule decided,
        # those of every rule that named this subject and resource.
        if rule is not None:
            relevant = [e for e in self.evaluations if e.rule == rule.name]
        else:
            relevant = [e for e in self.evaluations if e.subject and e.resource_pattern]
        return Decision(
            allowed=allowed,
            policy=rule.name if rule else None,
            reason=reason,
            grant=self.grant if allowed else None,
            conditions=tuple(condition for e in relevant for condition in e.conditions),
            action=self.action,
            resource=str(self.target),
            subject=self.subject.label(),
            evaluations=self.evaluations,
            record_allowed=bool(rule and rule.record_allowed),
        )


def _evaluate(rule: Rule, subject: Subject, target: Resource) -> RuleEvaluation:
    matched_subject = rule.matching_subject(subject)
    pattern = rule.matching_pattern(target.resource_type, target.name)
    results = tuple(_evaluate_condition(rule, condition, subject, target) for condition in rule.conditions)
    if matched_subject is None:
        note = (
            "not authenticated"
            if not subject.authenticated
            else "the subject is not one of " + ", ".join(rule.subjects)
        )
    elif pattern is None:
        note = f"the resource {target} matches none of " + ", ".join(map(str, rule.resources))
    elif not all(result.passed for result in results):
        note = "condition failed: " + "; ".join(r.condition for r in results if not r.passed)
    elif rule.require_grant:
        note = "applies if the subject holds a grant for this object"
    else:
        note = "applies"
    applies = matched_subject is not None and pattern is not None and all(r.passed for r in results)
    return RuleEvaluation(
        rule=rule.name,
        effect=rule.effect,
        line=rule.line,
        subject=matched_subject,
        resource_pattern=str(pattern) if pattern else None,
        conditions=results,
        require_grant=rule.require_grant,
        grant=None,
        applies=applies,
        note=note,
    )


def _with_grant(evaluation: RuleEvaluation, grant: str | None) -> RuleEvaluation:
    note = f"applies: grant {grant}" if grant else "no grant for this object"
    return RuleEvaluation(**{**evaluation.__dict__, "grant": grant, "applies": bool(grant), "note": note})


def _evaluate_condition(
    rule: Rule, condition: Condition, subject: Subject, target: Resource
) -> ConditionResult:
    if condition.side == "subject":
        actual = subject.value(condition.attribute)
        passed = subject_value_matches(actual, condition.constants)
        shown = ", ".join(sorted(actual)) if isinstance(actual, frozenset) else actual
        return ConditionResult(rule.name, str(condition), condition.expected_text, _shown(shown), passed)
    present = condition.attribute in target.attributes
    actual = attribute_text(target.attributes.get(condition.attribute))
    if condition.subject_attribute:
        expected = subject.value(condition.subject_attribute)
        passed = actual is not None and subject_value_matches(expected, (actual,))
        expected_shown = ", ".join(sorted(expected)) if isinstance(expected, frozenset) else expected
        expected_text = f"subject.{condition.subject_attribute} = {_shown(expected_shown)}"
    else:
        passed = actual is not None and actual in condition.constants
        expected_text = condition.expected_text
    actual_text = _shown(actual) if present else "(the resource has no such attribute)"
    return ConditionResult(rule.name, str(condition), expected_text, actual_text, passed)


def _shown(value: str | None) -> str:
    return value if value else "(none)"


def _denial_reason(subject: Subject, action: str, target: Resource, evaluations: list[RuleEvaluation]) -> str:
    if not subject.authenticated:
        return "Not signed in (or the account is inactive): no rule applies."
    if not vocabulary.is_known(target.resource_type, action):
        return f"'{action}' is not an action on {target.resource_type} resources (see access.actions)."
    if not evaluations:
        return f"No rule allows '{action}' on {target.resource_type} resources."
    reachable = [e for e in evaluations if e.subject and e.resource_pattern]
    if not reachable:
        return f"No rule allows '{action}' on {target} for {subject.label()}."
    closest = reachable[0]
    return f"No rule allows '{action}' on {target}: rule '{closest.rule}' does not apply ({closest.note})."
