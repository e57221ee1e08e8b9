"""Read and validate a YAML policy file into an `access.rules.Policy`.

The file is composed with `yaml.compose` (not `safe_load`) so every problem is reported with the
line it is on, and so duplicate keys, which `safe_load` would silently resolve to the last one,
are refused. Validation collects every problem before failing; a policy with any problem is
never used (see POLICY.md for the language).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml

from access import actions as vocabulary
from access.errors import PolicyError, Problem
from access.rules import (
    ALLOW,
    ANY_SUBJECT,
    DENY,
    SUBJECT_ATTRIBUTES,
    Condition,
    Policy,
    ResourcePattern,
    Rule,
)
from accounts.roles import Role

TOP_LEVEL_KEYS = ("version", "policies")
RULE_KEYS = (
    "name",
    "description",
    "effect",
    "subjects",
    "resources",
    "actions",
    "conditions",
    "require_grant",
    "record_allowed",
    "require_approval",
)
REQUIRED_RULE_KEYS = ("name", "subjects", "resources", "actions")
SUPPORTED_VERSIONS = (1,)

RULE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NAME_GLOB_PATTERN = re.compile(r"^[A-Za-z0-9_.*?-]{1,200}$")
ATTRIBUTE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
USERNAME_PATTERN = re.compile(r"^[\w.@+-]{1,150}$")

STR_TAG = "tag:yaml.org,2002:str"
BOOL_TAG = "tag:yaml.org,2002:bool"
INT_TAG = "tag:yaml.org,2002:int"


def load_policy_file(path: Path | str) -> Policy:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(path, [Problem(0, f"cannot be read ({exc.strerror or exc}).")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(path, [Problem(0, f"is not UTF-8 text ({exc.reason}).")]) from exc
    return parse_policy(text, source=str(path), sha256=hashlib.sha256(raw).hexdigest())


def parse_policy(text: str, *, source: str = "<string>", sha256: str = "") -> Policy:
    """A validated Policy, or PolicyError listing every problem with its line."""
    sha256 = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise PolicyError(
            source, [Problem(line, f"is not valid YAML: {exc.problem or exc.context}.")]
        ) from exc
    except yaml.YAMLError as exc:
        raise PolicyError(source, [Problem(0, f"is not valid YAML: {exc}.")]) from exc
    except RecursionError:  # the composer recurses once per nesting level
        raise PolicyError(source, [Problem(0, "is nested too deeply to be a policy file.")]) from None
    if root is None:
        raise PolicyError(source, [Problem(0, "is empty; it must contain a 'policies:' list.")])
    validator = _Validator()
    rules = validator.document(root)
    if validator.problems:
        raise PolicyError(source, validator.problems)
    return Policy(rules=tuple(rules), source=source, sha256=sha256)


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


class _Validator:
    def __init__(self):
        self.problems: list[Problem] = []

    def error(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(_line(node), message))

    # --- shapes --------------------------------------------------------------------------
    def mapping(self, node: yaml.Node, what: str, allowed: tuple[str, ...] | None) -> dict | None:
        """{key: value node}; refuses non-mappings, non-text keys, duplicates and unknown keys."""
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping of 'key: value' lines.")
            return None
        entries: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != STR_TAG:
                self.error(key_node, f"{what} has a key that is not text.")
                continue
            key = key_node.value
            if key in entries:
                self.error(key_node, f"{what} has the key '{key}' twice.")
                continue
            if allowed is not None and key not in allowed:
                self.error(key_node, f"unknown key '{key}' in {what}; allowed keys: {', '.join(allowed)}.")
                continue
            entries[key] = value_node
        return entries

    def text(self, node: yaml.Node, what: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.tag != STR_TAG or not node.value.strip():
            self.error(node, f"{what} must be non-empty text (quote numbers and booleans).")
            return None
        return node.value.strip()

    def boolean(self, node: yaml.Node, what: str) -> bool:
        if not isinstance(node, yaml.ScalarNode) or node.tag != BOOL_TAG:
            self.error(node, f"{what} must be true or false.")
            return False
        return node.value.lower() in ("true", "yes", "on", "y")

    def text_list(self, node: yaml.Node, what: str, example: str) -> list[tuple[str, yaml.Node]]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(node, f"{what} must be a non-empty list, e.g. {example}.")
            return []
        items = []
        for item in node.value:
            value = self.text(item, f"each entry of {what}")
            if value is not None:
                items.append((value, item))
        return items

    # --- document and rules --------------------------------------------------------------
    def document(self, root: yaml.Node) -> list[Rule]:
        top = self.mapping(root, "the policy file", TOP_LEVEL_KEYS)
        if top is None:
            return []
        if "version" in top:
            node = top["version"]
            if not (
                isinstance(node, yaml.ScalarNode)
                and node.tag == INT_TAG
                and node.value in {str(v) for v in SUPPORTED_VERSIONS}
            ):
                self.error(node, f"version must be one of {', '.join(map(str, SUPPORTED_VERSIONS))}.")
        if "policies" not in top:
            self.error(root, "the policy file must contain a 'policies:' list of rules.")
            return []
        policies = top["policies"]
        if not isinstance(policies, yaml.SequenceNode):
            self.error(policies, "'policies' must be a list of rules (each starting with '- name: ...').")
            return []
        rules, seen = [], {}
        for node in policies.value:
            rule = self.rule(node)
            if rule is None:
                continue
            if rule.name in seen:
                self.error(
                    node, f"rule name '{rule.name}' is already used by the rule on line {seen[rule.name]}."
                )
                continue
            seen[rule.name] = rule.line
            rules.append(rule)
        return rules

    def rule(self, node: yaml.Node) -> Rule | None:
        fields = self.mapping(node, "a rule", RULE_KEYS)
        if fields is None:
            return None
        missing = [key for key in REQUIRED_RULE_KEYS if key not in fields]
        if missing:
            self.error(node, f"the rule is missing {', '.join(repr(key) for key in missing)}.")
            return None
        problems_before = len(self.problems)
        name = self.text(fields["name"], "a rule's name")
        if name is not None and not RULE_NAME_PATTERN.match(name):
            self.error(fields["name"], f"rule name '{name}' may hold letters, digits, '_', '.' and '-' only.")
        label = f"rule '{name}'"
        effect = ALLOW
        if "effect" in fields:
            effect = self.text(fields["effect"], f"the effect of {label}")
            if effect not in (ALLOW, DENY):
                self.error(fields["effect"], f"the effect of {label} must be 'allow' or 'deny'.")
        subjects = self.subjects(fields["subjects"], label)
        resources = self.resources(fields["resources"], label)
        actions = self.actions(fields["actions"], label, resources)
        conditions = self.conditions(fields["conditions"], label) if "conditions" in fields else []
        require_grant = (
            self.boolean(fields["require_grant"], "require_grant") if "require_grant" in fields else False
        )
        if require_grant and effect == DENY:
            self.error(fields["require_grant"], f"{label}: require_grant applies to allow rules only.")
        record_allowed = (
            self.boolean(fields["record_allowed"], "record_allowed") if "record_allowed" in fields else False
        )
        require_approval = (
            self.boolean(fields["require_approval"], "require_approval")
            if "require_approval" in fields
            else False
        )
        if require_approval and effect == DENY:
            self.error(fields["require_approval"], f"{label}: require_approval applies to allow rules only.")
        description = self.text(fields["description"], "description") if "description" in fields else ""
        if len(self.problems) > problems_before:
            return None
        return Rule(
            name=name,
            effect=effect,
            subjects=tuple(subjects),
            resources=tuple(resources),
            actions=frozenset(actions),
            conditions=tuple(conditions),
            require_grant=require_grant,
            record_allowed=record_allowed,
            require_approval=require_approval,
            description=description or "",
            line=_line(node),
        )

    def subjects(self, node: yaml.Node, label: str) -> list[str]:
        roles = [role.value for role in Role]
        subjects = []
        for value, item in self.text_list(node, f"the subjects of {label}", '["role:radiologist"]'):
            kind, colon, name = value.partition(":")
            if value == ANY_SUBJECT or (kind == "role" and colon and name in roles):
                subjects.append(value)
            elif kind == "role" and colon:
                self.error(item, f"unknown role '{name}' in {label}; roles: {', '.join(roles)}.")
            elif kind == "user" and colon and USERNAME_PATTERN.match(name):
                subjects.append(value)
            else:
                self.error(item, f"subject '{value}' in {label} must be 'role:NAME', 'user:USERNAME' or '*'.")
        return subjects

    def resources(self, node: yaml.Node, label: str) -> list[ResourcePattern]:
        patterns = []
        for value, item in self.text_list(node, f"the resources of {label}", '["study:*"]'):
            resource_type, colon, name = value.partition(":")
            if not colon or not resource_type:
                self.error(
                    item, f"resource '{value}' in {label} has no type; write 'type:name', e.g. 'study:*'."
                )
            elif any(char in resource_type for char in "*?[]"):
                self.error(
                    item, f"resource '{value}' in {label}: wildcards are allowed in the name part only."
                )
            elif resource_type not in vocabulary.resource_types():
                known = ", ".join(vocabulary.resource_types())
                self.error(item, f"unknown resource type '{resource_type}' in {label}; known types: {known}.")
            elif "**" in name or not NAME_GLOB_PATTERN.match(name):
                self.error(
                    item,
                    f"bad resource name pattern '{name}' in {label}: use letters, digits, '_', '.', '-' and "
                    "the wildcards '*' (any run of characters) and '?' (one character); '**' is not a wildcard.",
                )
            else:
                patterns.append(ResourcePattern(resource_type, name))
        return patterns

    def actions(self, node: yaml.Node, label: str, resources: list[ResourcePattern]) -> list[str]:
        types = sorted({pattern.resource_type for pattern in resources})
        names = []
        for value, item in self.text_list(node, f"the actions of {label}", '["view"]'):
            if types and not any(vocabulary.is_known(rtype, value) for rtype in types):
                known = "; ".join(f"{rtype}: {', '.join(vocabulary.actions_for(rtype))}" for rtype in types)
                self.error(
                    item, f"unknown action '{value}' in {label}; actions of its resource types: {known}."
                )
            else:
                names.append(value)
        return names

    def conditions(self, node: yaml.Node, label: str) -> list[Condition]:
        entries = self.mapping(node, f"the conditions of {label}", None)
        if entries is None:
            return []
        key_nodes = {
            key_node.value: key_node for key_node, _ in node.value if isinstance(key_node, yaml.ScalarNode)
        }
        conditions = []
        for key, value_node in entries.items():
            condition = self.condition(key, key_nodes[key], value_node, label)
            if condition is not None:
                conditions.append(condition)
        return conditions

    def condition(self, key: str, key_node: yaml.Node, value_node: yaml.Node, label: str) -> Condition | None:
        side, dot, attribute = key.partition(".")
        if not dot:
            side, attribute = "subject", key
        if side == "subject" and attribute not in SUBJECT_ATTRIBUTES:
            self.error(
                key_node,
                f"unknown subject attribute '{attribute}' in {label}; subject attributes: "
                f"{', '.join(SUBJECT_ATTRIBUTES)} (use 'resource.NAME' for the resource's attributes).",
            )
            return None
        if side not in ("subject", "resource") or not ATTRIBUTE_PATTERN.match(attribute):
            self.error(
                key_node, f"condition key '{key}' in {label} must be 'ATTRIBUTE' or 'resource.ATTRIBUTE'."
            )
            return None
        line = _line(key_node)
        if isinstance(value_node, yaml.SequenceNode):
            constants = [
                value for value, _ in self.text_list(value_node, f"condition '{key}' of {label}", "[a, b]")
            ]
            if len(constants) != len(value_node.value):
                return None
            if any(value.startswith("subject.") for value in constants):
                self.error(
                    value_node, f"condition '{key}' of {label}: a list holds constants, not 'subject.*'."
                )
                return None
            return Condition(side, attribute, constants=tuple(constants), line=line)
        value = self.text(value_node, f"condition '{key}' of {label}")
        if value is None:
            return None
        if not value.startswith("subject."):
            return Condition(side, attribute, constants=(value,), line=line)
        referenced = value.removeprefix("subject.")
        if side == "subject":
            self.error(
                value_node, f"condition '{key}' of {label} compares the subject with itself; use a constant."
            )
            return None
        if referenced not in SUBJECT_ATTRIBUTES:
            self.error(
                value_node,
                f"unknown subject attribute '{referenced}' in {label}; subject attributes: "
                f"{', '.join(SUBJECT_ATTRIBUTES)}.",
            )
            return None
        return Condition(side, attribute, subject_attribute=referenced, line=line)
