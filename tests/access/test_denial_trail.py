"""A denial decided inside a service's transaction stays on the trail after that transaction rolls back:
whoever handles the PolicyDenied afterwards (the API's exception handler, a page that shows the refusal,
the 404 handler, a failed task) writes it again if it is gone, once."""

from __future__ import annotations

import pytest
from celery.signals import task_failure

from access.enforcement import trail_denial
from access.errors import PolicyDenied
from audit.models import Event
from manufacturing.models import Line, Machine, Site, WorkOrder
from manufacturing.services import work_order_file, work_order_transition
from manufacturing.services.work_orders import work_order_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def assigned(make_user):
    """A site-a work order assigned to an engineer of site-b: they may work it, not cancel it (that
    needs `file`, decided inside work_order_transition's transaction)."""
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A"})
    machine = Machine.objects.create(line=Line.objects.create(site=site, name="L1"), tag="P-1", name="Pump")
    owner = make_user("maintenance_engineer", site="site-a")
    assignee = make_user("maintenance_engineer", site="site-b")
    work_order = work_order_file(actor=owner, machine=machine, title="Seal leak")
    work_order_update(actor=owner, work_order=work_order, assignee=assignee.username)
    return work_order, assignee


def _denied(user) -> int:
    return (
        Event.objects.filter(action="work_order.cancel", outcome="denied", actor_label=user.username).count()
        + Event.objects.filter(action="work_order.file", outcome="denied", actor_label=user.username).count()
    )


def test_a_service_denial_rolls_back_with_its_transaction_and_is_written_again_once(assigned):
    work_order, assignee = assigned
    with pytest.raises(PolicyDenied) as caught:
        work_order_transition(actor=assignee, work_order=work_order, to_status="cancelled")
    assert _denied(assignee) == 0  # gone with the service's transaction
    trail_denial(caught.value)
    trail_denial(caught.value)
    assert _denied(assignee) == 1
    assert WorkOrder.objects.get(pk=work_order.pk).status == "open"


def test_the_api_and_the_page_put_the_services_denial_on_the_trail(client, assigned):
    work_order, assignee = assigned
    client.force_login(assignee)
    response = client.post(
        f"/api/manufacturing/work-orders/{work_order.pk}/transition/",
        {"status": "cancelled"},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert _denied(assignee) == 1
    page = client.post(
        f"/manufacturing/work-orders/{work_order.pk}/transition/", {"status": "cancelled"}, follow=True
    )
    assert page.status_code == 200 and _denied(assignee) == 2


def test_a_hidden_resource_and_a_failed_task_trail_their_denials(client, assigned):
    work_order, assignee = assigned
    with pytest.raises(PolicyDenied) as caught:
        work_order_transition(actor=assignee, work_order=work_order, to_status="cancelled")
    try:
        raise LookupError("not visible") from caught.value
    except LookupError as hidden:
        trail_denial(hidden)  # what the 404 handler does with a 404 raised from a denial
    assert _denied(assignee) == 1
    with pytest.raises(PolicyDenied) as again:
        work_order_transition(actor=assignee, work_order=work_order, to_status="cancelled")
    task_failure.send(sender=None, task_id="t1", exception=again.value)
    assert _denied(assignee) == 2
