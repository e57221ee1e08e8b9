"""The policy file: what parses, and every kind of malformed file refused with its line named."""

from __future__ import annotations

import textwrap

import pytest

from access import actions as vocabulary
from access.errors import PolicyError
from access.loader import load_policy_file, parse_policy
from access.policy import DEFAULT_POLICY_FILE
from access.rules import DENY, Condition, ResourcePattern
from tests.access.conftest import DATA

VALID_RULE = """\
policies:
  - name: ok
    subjects: ["role:clinician"]
    resources: ["study:*"]
    actions: ["view"]
"""

# (case, file text, line of the problem, words the message must contain)
MALFORMED = [
    (
        "unknown rule key",
        VALID_RULE + "    condition:\n      department: radiology\n",
        6,
        "unknown key 'condition'",
    ),
    ("unknown top-level key", "version: 1\npolicy:\n  - name: a\n", 2, "unknown key 'policy'"),
    ("double-star wildcard", VALID_RULE.replace('"study:*"', '"study:**"'), 4, "'**' is not a wildcard"),
    ("bracket wildcard", VALID_RULE.replace('"study:*"', '"study:[ab]*"'), 4, "bad resource name pattern"),
    ("missing resource type", VALID_RULE.replace('"study:*"', '"medical_qa"'), 4, "has no type"),
    ("empty resource type", VALID_RULE.replace('"study:*"', '":medical_qa"'), 4, "has no type"),
    ("wildcard in the type", VALID_RULE.replace('"study:*"', '"*:x"'), 4, "name part only"),
    (
        "unknown resource type",
        VALID_RULE.replace('"study:*"', '"studdy:*"'),
        4,
        "unknown resource type 'studdy'",
    ),
    ("unknown action", VALID_RULE.replace('["view"]', '["veiw"]'), 5, "unknown action 'veiw'"),
    ("action of another type", VALID_RULE.replace('["view"]', '["predict"]'), 5, "unknown action 'predict'"),
    ("unknown role", VALID_RULE.replace("role:clinician", "role:clinican"), 3, "unknown role 'clinican'"),
    ("bad subject", VALID_RULE.replace("role:clinician", "clinician"), 3, "must be 'role:NAME'"),
    ("bad YAML", VALID_RULE.replace('["view"]', '["view"'), 6, "not valid YAML"),
    ("tab indentation", VALID_RULE.replace("    actions", "\tactions"), 5, "not valid YAML"),
    ("list given as text", VALID_RULE.replace('["role:clinician"]', "role:clinician"), 3, "non-empty list"),
    ("empty list", VALID_RULE.replace('["view"]', "[]"), 5, "non-empty list"),
    ("boolean given as text", VALID_RULE + '    require_grant: "yes"\n', 6, "true or false"),
    ("number where text is due", VALID_RULE + "    conditions:\n      site: 7\n", 7, "quote numbers"),
    ("conditions not a mapping", VALID_RULE + "    conditions: [department]\n", 6, "must be a mapping"),
    ("unknown subject attribute", VALID_RULE + "    conditions:\n      clearance: high\n", 7, "'clearance'"),
    ("subject compared with itself", VALID_RULE + "    conditions:\n      site: subject.site\n", 7, "itself"),
    ("duplicate key", VALID_RULE + '    actions: ["ask"]\n', 6, "the key 'actions' twice"),
    ("bad effect", VALID_RULE + "    effect: permit\n", 6, "'allow' or 'deny'"),
    (
        "grant on a deny rule",
        VALID_RULE + "    effect: deny\n    require_grant: true\n",
        7,
        "allow rules only",
    ),
    ("missing key", "policies:\n  - name: a\n    subjects: ['*']\n", 2, "missing 'resources', 'actions'"),
    ("duplicate rule name", VALID_RULE + VALID_RULE.removeprefix("policies:\n"), 6, "already used"),
    ("policies not a list", "policies:\n  name: a\n", 2, "must be a list"),
    ("unsupported version", "version: 2\n" + VALID_RULE, 1, "version must be"),
]


@pytest.mark.parametrize(("case", "text", "line", "words"), MALFORMED, ids=[case[0] for case in MALFORMED])
def test_malformed_policy_is_refused_naming_the_line(tmp_path, case, text, line, words):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        load_policy_file(path)
    problems = caught.value.problems
    assert any(problem.line == line and words in problem.message for problem in problems), problems
    assert f"{path}, line {line}: " in str(caught.value)


def test_every_problem_is_reported_not_only_the_first():
    second = (
        '  - name: second\n    subjects: ["role:nobody"]\n    resources: ["study:*"]\n    actions: ["view"]\n'
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(VALID_RULE.replace('"study:*"', '"studdy:*"') + second, source="many.yaml")
    found = [(problem.line, problem.message.split(" in ")[0]) for problem in caught.value.problems]
    assert found == [(4, "unknown resource type 'studdy'"), (7, "unknown role 'nobody'")]


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy_file(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("# nothing here\n")
    with pytest.raises(PolicyError, match="is empty"):
        load_policy_file(tmp_path / "empty.yaml")


def test_seed_example_parses_to_the_documented_rule():
    policy = load_policy_file(DATA / "seed.yaml")
    (rule,) = policy.rules
    assert rule.name == "radiologist_access"
    assert rule.effect == "allow" and not rule.require_grant
    assert rule.subjects == ("role:radiologist",)
    assert rule.resources == (ResourcePattern("model", "medical_qa"),)
    assert rule.actions == {"predict", "fine_tune"}
    assert rule.conditions == (
        Condition("subject", "department", constants=("radiology",), line=8),
        Condition("subject", "certification", constants=("board_certified",), line=9),
    )
    assert rule.line == 3
    assert len(policy.sha256) == 64


def test_condition_forms():
    text = VALID_RULE + textwrap.indent(
        "effect: deny\nconditions:\n  site: [site-a, site-b]\n  resource.department: subject.department\n"
        "  resource.status: quarantined\n  subject.role: admin\n",
        "    ",
    )
    (rule,) = parse_policy(text).rules
    assert rule.effect == DENY
    assert [str(condition) for condition in rule.conditions] == [
        "site: one of site-a, site-b",
        "resource.department: subject.department",
        "resource.status: quarantined",
        "role: admin",
    ]


def test_default_policy_is_valid_and_covers_every_action_of_the_suite():
    policy = load_policy_file(DEFAULT_POLICY_FILE)
    for resource_type in vocabulary.resource_types():
        for action in vocabulary.actions_for(resource_type):
            allowing = [rule for rule in policy.rules_for(resource_type, action) if not rule.is_deny]
            assert allowing, f"the default policy never allows {action} on {resource_type}"


def test_actions_outside_the_vocabulary_are_refused():
    text = VALID_RULE.replace('["view"]', '["annotate"]')
    with pytest.raises(PolicyError, match="unknown action 'annotate'"):
        parse_policy(text)
    with pytest.raises(ValueError, match="lower-case identifiers"):
        vocabulary.register("study", ["Annotate!"])
    assert "annotate" not in vocabulary.actions_for("study")
