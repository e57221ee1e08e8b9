"""Human wording for stored identifiers on the maintenance pages: `{{ analysis.fault|fault_label }}`,
`{{ event.to_status|status_label }}`."""

from django import template

from manufacturing.analysis.vibration import fault_label as _fault_label
from manufacturing.models import WorkOrder

register = template.Library()


@register.filter
def fault_label(value) -> str:
    """ "outer_race" -> "outer-race bearing defect"; "none" -> "no bearing defect found"; "" (no bearing
    geometry, so no call was made) -> "no fault call (...)"."""
    return _fault_label(str(value or ""))


@register.filter
def status_label(value) -> str:
    """A work order status as people say it: "in_progress" -> "In progress"; "" -> "" (unknown kept)."""
    value = str(value or "")
    return WorkOrder.Status(value).label if value in WorkOrder.Status.values else value
