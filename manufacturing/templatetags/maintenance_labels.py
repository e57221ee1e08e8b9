"""Human wording for stored identifiers on the maintenance pages: `{{ analysis.fault|fault_label }}`."""

from django import template

from manufacturing.analysis.vibration import fault_label as _fault_label

register = template.Library()


@register.filter
def fault_label(value) -> str:
    """ "outer_race" -> "outer-race bearing defect"; "" -> "no bearing defect found"."""
    return _fault_label(str(value or ""))
