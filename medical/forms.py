"""Portal forms: study filters, upload, share, break-glass and burned-in review."""

from __future__ import annotations

from django import forms

from medical import selectors
from medical.models import Study
from medical.services.studies import MIN_BREAK_GLASS_REASON


class StudyFilterForm(forms.Form):
    modality = forms.CharField(
        required=False,
        max_length=16,
        widget=forms.TextInput(attrs={"placeholder": "CT", "list": "modalities"}),
    )
    date_from = forms.DateField(
        required=False, label="Received from", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="Received to", widget=forms.DateInput(attrs={"type": "date"})
    )
    text = forms.CharField(required=False, max_length=100, label="Description")
    patient = forms.CharField(
        required=False,
        max_length=64,
        label="Patient pseudonym",
        widget=forms.TextInput(attrs={"placeholder": "anon-3f2a (prefix)"}),
    )
    burned_in_review = forms.ChoiceField(
        required=False, choices=[("", "any"), *Study.BurnedInReview.choices], label="Burned-in review"
    )
    sort = forms.ChoiceField(
        required=False,
        label="Sort by",
        choices=[
            ("received", "newest first"),
            ("oldest", "oldest first"),
            ("modality", "modality"),
            ("images", "most images"),
            ("series", "most series"),
            ("patient", "patient"),
        ],
    )

    def clean_modality(self) -> str:
        return self.cleaned_data["modality"].strip().upper()

    def filters(self) -> selectors.StudyFilters:
        """The valid filters (a refused one is shown with its message, the others still apply)."""
        if not self.is_bound:
            return selectors.StudyFilters()
        self.is_valid()
        return selectors.StudyFilters(**{key: value for key, value in self.cleaned_data.items() if value})

    def active(self) -> list[str]:
        """What is applied, as a person reads it ("Modality: CT"); the default sort is not listed."""
        if not self.is_bound:
            return []
        self.is_valid()
        applied = []
        for name, value in self.cleaned_data.items():
            if not value or (name == "sort" and value == "received"):
                continue
            field = self.fields[name]
            shown = dict(field.choices).get(value, value) if isinstance(field, forms.ChoiceField) else value
            applied.append(f"{self[name].label}: {shown}")
        return applied


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"multiple": True}))
        # An empty file gets its own "empty file" result from the upload service, not a form error
        # that refuses the whole request.
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)]


class UploadForm(forms.Form):
    files = MultipleFileField(
        label="DICOM files or ZIP archives",
        help_text="Several files at once, or a ZIP of a study folder. Each file is stored or refused on its own.",
    )


class ShareForm(forms.Form):
    username = forms.CharField(max_length=150, label="Colleague's user name")


class BreakGlassForm(forms.Form):
    instance = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        min_length=MIN_BREAK_GLASS_REASON,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the identified original is needed now. Your name, the reason and the time are trailed.",
    )


class BurnedInReviewForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (Study.BurnedInReview.CLEARED, "No identifying text in the pixels: models may use this study"),
            (Study.BurnedInReview.WITHHELD, "Identifying text is burned in: keep it from models"),
        ],
        widget=forms.RadioSelect,
    )
