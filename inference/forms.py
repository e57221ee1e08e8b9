"""Portal forms of the LLM layer. Types are checked here; values by the service, like the API's."""

from __future__ import annotations

from django import forms

from inference.models import LanguageModel, ModelDefault


class ModelRegisterForm(forms.Form):
    path = forms.CharField(
        max_length=500,
        label="Model directory",
        help_text="A Hugging Face-format directory inside MODEL_ROOT (config.json, *.safetensors, tokenizer files).",
    )
    name = forms.CharField(
        max_length=64, help_text="Lower-case letters, digits, '_', '.' or '-', e.g. medical_qa."
    )
    description = forms.CharField(max_length=300, required=False)
    quantization = forms.ChoiceField(choices=LanguageModel.Quantization.choices[:3], initial="none")
    draft = forms.CharField(
        required=False, label="Draft model", help_text="Optional: a registered model name."
    )
    replace = forms.BooleanField(required=False, label="Replace a model of that name")


class ModelDefaultForm(forms.Form):
    purpose = forms.ChoiceField(label="Purpose")
    model = forms.ChoiceField(
        label="Model", help_text="A model, or model:adapter for a promoted LoRA adapter."
    )

    def __init__(self, *args, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["purpose"].choices = ModelDefault.Purpose.choices
        self.fields["model"].choices = [
            (name, name) for name in (f"{m.name}:{a.name}" if a else m.name for m, a in targets)
        ]
