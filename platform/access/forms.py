from __future__ import annotations

from django import forms

from access import actions as vocabulary
from access.resources import model_for_type


class ExplainForm(forms.Form):
    """The question "may USER do ACTION on RESOURCE?"; the resource as type:name or type and id."""

    user = forms.CharField(max_length=150, label="User name")
    action = forms.CharField(max_length=64, help_text="e.g. view, predict, export")
    resource = forms.CharField(
        max_length=200,
        required=False,
        help_text='As code names it, e.g. "model:medical_qa" or "trail:suite".',
    )
    resource_type = forms.ChoiceField(required=False, label="or an object: type", choices=())
    resource_id = forms.CharField(max_length=64, required=False, label="id")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["resource_type"].choices = [("", "—"), *((t, t) for t in vocabulary.resource_types())]

    def clean(self):
        data = super().clean()
        by_name = bool(data.get("resource"))
        by_id = bool(data.get("resource_type") or data.get("resource_id"))
        if by_name == by_id:
            raise forms.ValidationError("Give either a resource as type:name, or a type and an object id.")
        if by_id and not (data.get("resource_type") and data.get("resource_id")):
            raise forms.ValidationError("An object needs both its type and its id.")
        return data


class ApprovalRequestForm(forms.Form):
    """Ask a colleague to approve one use of an action on one object, with the reason."""

    action = forms.CharField(max_length=64, help_text="e.g. break_glass")
    resource_type = forms.ChoiceField(label="Object type", choices=())
    resource_id = forms.CharField(max_length=64, label="Object id")
    reason = forms.CharField(
        max_length=1000, widget=forms.Textarea(attrs={"rows": 2}), help_text="Who needs it, and why."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["resource_type"].choices = [(t, t) for t in vocabulary.resource_types()]

    def clean(self):
        data = super().clean()
        resource_type, resource_id = data.get("resource_type"), data.get("resource_id")
        if resource_type and resource_id:
            model = model_for_type(resource_type)
            found = (
                model._default_manager.filter(pk=resource_id).first()
                if model and resource_id.isdigit()
                else None
            )
            if found is None:
                raise forms.ValidationError(f"No {resource_type} with id {resource_id}.")
            self._resource = found
        return data

    def resource(self):
        return self._resource
