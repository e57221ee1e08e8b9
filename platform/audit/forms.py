from __future__ import annotations

from django import forms

from audit.export import EXPORT_FORMATS
from audit.models import Outcome


class _MomentInput(forms.DateTimeInput):
    input_type = "datetime-local"


class EventFilterForm(forms.Form):
    chain = forms.CharField(required=False, max_length=64)
    actor = forms.CharField(required=False, max_length=255, help_text="Part of a user name or system actor.")
    action = forms.CharField(
        required=False, max_length=128, help_text='A prefix, e.g. "auth." for all logins.'
    )
    resource_type = forms.CharField(required=False, max_length=64)
    resource_id = forms.CharField(required=False, max_length=255)
    outcome = forms.ChoiceField(required=False, choices=[("", "Any"), *Outcome.choices])
    since = forms.DateTimeField(required=False, widget=_MomentInput, help_text="From (inclusive).")
    until = forms.DateTimeField(required=False, widget=_MomentInput, help_text="To (exclusive).")


class ExportForm(forms.Form):
    """Exports cover a chain over a time range: other filters would break the chain's links."""

    format = forms.ChoiceField(
        choices=[(name, name) for name in EXPORT_FORMATS], initial="jsonl", required=False
    )
    chain = forms.CharField(required=False, max_length=64)
    since = forms.DateTimeField(required=False)
    until = forms.DateTimeField(required=False)
