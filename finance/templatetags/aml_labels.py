"""Scenario parameters and what a scenario saw, in the units an officer reads them: a `_s` window in
days or hours ("14 days", not 1209600), a `_usd` amount with its currency ("10,000 USD"), a list as
words ("cash", not ['cash']). The parameter's own name stays beside it: proposals are written with it.

    {% load aml_labels %}{{ value|param_value:key }}
"""

from __future__ import annotations

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


def _number(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return intcomma(value)


def duration(seconds: float) -> str:
    """1209600 -> "14 days"; 5400 -> "90 minutes"; 0 -> "0 seconds": the largest whole unit."""
    for size, name in _UNITS:
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count:,} {name}{'' if count == 1 else 's'}"
    return f"{seconds:g} seconds"


@register.filter
def param_value(value, key: str = "") -> str:
    key = str(key or "")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if is_number and key.endswith("_s"):
        return duration(value)
    if is_number and key.endswith("_usd"):
        return f"{_number(value)} USD"
    if is_number:
        return _number(value)
    return str(value)
