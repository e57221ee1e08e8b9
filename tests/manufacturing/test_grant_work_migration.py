"""Migration 0004: grants given before 0003 (view + close, no work) gain `work`, trailed, once."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from access.decisions import decide
from audit.models import Event
from manufacturing.models import WorkOrder
from manufacturing.services import work_order_file, work_order_transition

pytestmark = pytest.mark.django_db

migration = importlib.import_module("manufacturing.migrations.0004_grant_work_to_closers")


def test_close_grants_from_before_0003_gain_work(engineer_a, engineer_b, make_user, machine_a):
    work_order = work_order_file(actor=engineer_a, machine=machine_a, title="Seal leak on pump")
    untouched = work_order_file(actor=engineer_a, machine=machine_a, title="Guard loose")
    # the grant as assigning gave it before 0003: view and close, no work
    for action in ("view", "close"):
        assign_perm(f"manufacturing.{action}_workorder", engineer_b, work_order)
    crew = Group.objects.create(name="site-b night crew")
    crew_member = make_user("maintenance_engineer", site="site-b")
    crew_member.groups.add(crew)
    assign_perm("manufacturing.close_workorder", crew, work_order)
    viewer = make_user("maintenance_engineer", site="site-b")
    assign_perm("manufacturing.view_workorder", viewer, untouched)  # view alone gains nothing
    assert not decide(engineer_b, "work", work_order).allowed
    assert not decide(crew_member, "work", work_order).allowed

    migration.grant_work_to_closers(apps, None)

    for user in (engineer_b, crew_member):
        assert decide(user, "work", work_order).policy == "assigned_work_order"
    assert not decide(viewer, "work", untouched).allowed
    work_order_transition(actor=engineer_b, work_order=work_order, to_status=WorkOrder.Status.IN_PROGRESS)
    work_order.refresh_from_db()
    assert work_order.status == WorkOrder.Status.IN_PROGRESS
    trailed = Event.objects.filter(action="work_order.grant", actor_label=migration.ACTOR)
    assert {(e.payload["grantee"], e.payload["grantee_kind"]) for e in trailed} == {
        (engineer_b.username, "user"),
        ("site-b night crew", "group"),
    }
    assert all(e.resource_id == str(work_order.pk) and e.payload["action"] == "work" for e in trailed)

    migration.grant_work_to_closers(apps, None)  # a second run finds nothing to add
    assert Event.objects.filter(action="work_order.grant", actor_label=migration.ACTOR).count() == 2
