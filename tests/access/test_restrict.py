"""restrict() must select exactly the objects decide() allows, for every (user, object) pair."""

from __future__ import annotations

import random

import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from access.decisions import decide
from access.loader import load_policy_file
from access.policy import DEFAULT_POLICY_FILE
from access.querysets import glob_to_regex, restrict
from accounts.models import User
from accounts.roles import Role
from tests.access.conftest import DATA

NAMES = ["dr_ada", "dr_bo", "nurse_1", "nurse_12", "boss", "bossy", "alice", "xdr_ada", "dr_", "clerk"]
DEPARTMENTS = ["radiology", "cardiology", "legal", "board_certified", ""]
SITES = ["site-a", "site-b", "site-c", ""]
CERTIFICATIONS = ["board_certified", "radiology", "legal"]
# A fixed list, not every Role: the seeded populations (and so the allowed pairs each seed exercises)
# must not change when a role is added (the domain auditors: no rule of these policies names them).
ROLES = [
    "clinician",
    "radiologist",
    "compliance_officer",
    "maintenance_engineer",
    "ml_engineer",
    "auditor",
    "admin",
]
POLICIES = {
    "restrict.yaml": load_policy_file(DATA / "restrict.yaml"),
    "grants.yaml": load_policy_file(DATA / "grants.yaml"),
    "default": load_policy_file(DEFAULT_POLICY_FILE),
}


def build_population(seed: int) -> list[User]:
    rng = random.Random(seed)
    groups = {role: Group.objects.get_or_create(name=role)[0] for role in ROLES}
    users = []
    for index in range(36):
        name = NAMES[index] if index < len(NAMES) else f"{rng.choice(NAMES)}{index}"
        user = User.objects.create(
            username=name,
            department=rng.choice(DEPARTMENTS),
            site=rng.choice(SITES),
            certifications=rng.sample(CERTIFICATIONS, rng.randint(0, 2)),
            is_active=rng.random() > 0.1,
        )
        user.groups.set(rng.sample(list(groups.values()), rng.choice([0, 1, 1, 1, 2])))
        users.append(user)
    for _ in range(40):  # grants to people and to roles
        action = rng.choice(["view", "view", "change"])  # "change" matches no rule: must not matter
        holder = rng.choice(users) if rng.random() < 0.8 else rng.choice(list(groups.values()))
        assign_perm(f"{action}_user", holder, rng.choice(users))
    return list(User.objects.all())


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("policy_name", list(POLICIES))
def test_restrict_agrees_with_decide_for_every_pair(seed, policy_name):
    policy = POLICIES[policy_name]
    population = build_population(seed)
    disagreements, allowed_pairs = [], 0
    for subject in population:
        subject = User.objects.get(pk=subject.pk)  # fresh role cache
        for action in ("view", "manage", "share"):
            visible = set(
                restrict(User.objects.all(), subject, action, policy=policy).values_list("pk", flat=True)
            )
            for obj in population:
                allowed = decide(subject, action, obj, policy=policy).allowed
                allowed_pairs += allowed
                if allowed != (obj.pk in visible):
                    disagreements.append((subject.username, action, obj.username, allowed))
    assert disagreements == []
    assert allowed_pairs > 20  # the population exercises allows, not only denials


@pytest.mark.django_db
def test_restrict_reads_no_row_it_may_not_show(make_user, django_assert_max_num_queries):
    viewer = make_user(Role.CLINICIAN, department="radiology")
    make_user(department="radiology")
    make_user(department="cardiology")
    queryset = restrict(User.objects.all(), viewer, "view", policy=POLICIES["grants.yaml"])
    with django_assert_max_num_queries(1):
        rows = list(queryset)
    assert {user.department for user in rows} == {"radiology"}
    assert 'department" = ' in str(queryset.query)  # filtered by the database, not in Python


@pytest.mark.django_db
def test_no_allow_rule_means_no_rows(make_user):
    make_user(department="radiology")
    stranger = make_user(Role.MAINTENANCE_ENGINEER, site="site-b")  # site_staff needs site-a
    assert not restrict(User.objects.all(), stranger, "view", policy=POLICIES["restrict.yaml"]).exists()
    from django.contrib.auth.models import AnonymousUser

    assert not restrict(
        User.objects.all(), AnonymousUser(), "view", policy=POLICIES["restrict.yaml"]
    ).exists()


@pytest.mark.parametrize(
    ("glob", "matches", "misses"),
    [
        ("dr_*", ["dr_", "dr_ada"], ["xdr_ada", "dr"]),
        ("nurse_?", ["nurse_1"], ["nurse_12", "nurse_"]),
        ("a.b-c", ["a.b-c"], ["aXb-c"]),
    ],
)
def test_glob_translation(glob, matches, misses):
    import re

    pattern = re.compile(glob_to_regex(glob))
    assert all(pattern.search(name) for name in matches)
    assert not any(pattern.search(name) for name in misses)
