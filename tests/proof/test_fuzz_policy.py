"""Fuzzing the access policy loader: malformed policy files are refused with a clear error.

Whatever the file holds, `load_policy_file` returns a validated Policy or raises PolicyError naming
the file and the line of every problem - never another exception, never a policy half-read.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import event, given
from hypothesis import strategies as st

from access.errors import PolicyError
from access.loader import load_policy_file, parse_policy
from access.policy import DEFAULT_POLICY_FILE
from access.rules import Policy
from tests.proof.fuzzing import fuzz_settings, mutated

DEFAULT_TEXT = DEFAULT_POLICY_FILE.read_text(encoding="utf-8")
# One short rule, so that mutations of it reach every part of the rule grammar.
SMALL = """\
version: 1
policies:
  - name: ok
    effect: allow
    subjects: ["role:clinician", "user:alice"]
    resources: ["study:*"]
    actions: ["view"]
    conditions:
      resource.department: subject.department
      subject.site: [a, b]
    require_grant: false
    record_allowed: true
"""
YAML_NOISE = st.sampled_from(
    list("[]{}:-,&*!|>'\"#%@`?\t\n ")
    + ["\n  - ", ": ", "!!python/object:os.system", "&a", "*a", "<<: *a", "\ufeff", "\x00"]
)


@st.composite
def mutated_policy_text(draw) -> str:
    lines = draw(st.sampled_from([SMALL, DEFAULT_TEXT])).split("\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "noise", "indent", "swap", "truncate"]))
        if op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "noise":
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            lines[i] = line[:at] + draw(YAML_NOISE) + line[at:]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "   ", "\t"])) + lines[i].lstrip()
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        else:
            del lines[i:]
        if not lines:
            lines = [""]
    return "\n".join(lines)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["role:clinician", "study:*", "view", "allow", "deny", "subject.department", "*"]),
)
KEYS = st.sampled_from(
    ["version", "policies", "name", "effect", "subjects", "resources", "actions", "conditions",
     "require_grant", "record_allowed", "description", "department", "resource.department", "x"]
)  # fmt: skip
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)


def _assert_clear(error: PolicyError, source: str) -> None:
    assert error.problems, "a refusal lists its problems"
    for problem in error.problems:
        assert problem.line >= 0 and problem.message.strip()
    text = str(error)
    assert text.startswith(f"Access policy {source}"), text


def _load(text: str, source: str = "fuzzed.yaml", *, record_event=event) -> Policy | None:
    try:
        policy = parse_policy(text, source=source)
    except PolicyError as error:
        _assert_clear(error, source)
        record_event("policy refused")
        return None
    record_event("policy accepted")
    # An empty list of rules is a valid policy (it allows nothing); every rule it holds is complete.
    assert all(rule.name and rule.subjects and rule.resources and rule.actions for rule in policy.rules)
    return policy


@given(text=mutated_policy_text())
@fuzz_settings(examples=60)
def test_mutated_policy_files_load_or_are_refused_with_their_lines(text):
    _load(text)


@given(document=st.fixed_dictionaries({"policies": st.lists(DOCUMENTS, max_size=3)}) | DOCUMENTS)
@fuzz_settings(examples=60)
def test_policy_shaped_documents_load_or_are_refused(document):
    _load(yaml.safe_dump(document, allow_unicode=True))


@pytest.mark.parametrize("depth", [50, 1500])
def test_deeply_nested_policy_is_refused(depth):
    assert _load("policies: " + "[" * depth + "]" * depth, record_event=print) is None
    assert (
        _load("policies:\n" + "".join("  " * i + "- \n" for i in range(depth // 10)), record_event=print)
        is None
    )


@given(raw=st.binary(max_size=200) | st.sampled_from([DEFAULT_TEXT.encode()]).flatmap(mutated))
@fuzz_settings(examples=30)
def test_policy_file_bytes_load_or_are_refused(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_bytes(raw)
    try:
        load_policy_file(path)
    except PolicyError as error:
        _assert_clear(error, str(path))
