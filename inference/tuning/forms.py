"""The portal's job form. Types are checked here; values by the service, like the API's."""

from __future__ import annotations

import json

from django import forms

from inference.registry import default_model
from inference.tuning.serializers import DP_DEFAULTS, LORA_DEFAULTS, TRAIN_DEFAULTS, settings_from


class JobForm(forms.Form):
    base_model = forms.ChoiceField(label="Base model")
    data_adapter = forms.ChoiceField(label="Data adapter")
    adapter_name = forms.CharField(
        max_length=64, label="Adapter name", help_text="Lower-case letters, digits, '_', '.' or '-'."
    )
    filters = forms.CharField(
        initial="{}",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text='The data adapter\'s filters as a JSON object, e.g. {"modality": "CT"}.',
    )
    lora_r = forms.IntegerField(initial=LORA_DEFAULTS.r, label="LoRA rank r")
    lora_alpha = forms.IntegerField(initial=int(LORA_DEFAULTS.alpha), label="LoRA alpha")
    lora_dropout = forms.FloatField(
        initial=LORA_DEFAULTS.dropout,
        label="LoRA dropout",
        help_text="Set to 0 automatically when differential privacy is on.",
    )
    target_modules = forms.CharField(
        initial=", ".join(LORA_DEFAULTS.target_modules),
        required=False,
        label="Target modules",
        help_text="Comma-separated linear module names of the model.",
    )
    epochs = forms.IntegerField(initial=TRAIN_DEFAULTS.epochs)
    max_steps = forms.IntegerField(required=False, label="Step limit", help_text="Empty: all epochs.")
    learning_rate = forms.FloatField(initial=TRAIN_DEFAULTS.learning_rate, label="Learning rate")
    batch_size = forms.IntegerField(initial=TRAIN_DEFAULTS.batch_size, label="Batch size")
    seed = forms.IntegerField(initial=TRAIN_DEFAULTS.seed)
    checkpoint_every = forms.IntegerField(
        initial=TRAIN_DEFAULTS.checkpoint_every, label="Checkpoint every N steps"
    )
    max_seq_len = forms.IntegerField(initial=TRAIN_DEFAULTS.max_seq_len, label="Max tokens per example")
    dp_enabled = forms.BooleanField(required=False, label="Differential privacy (DP-SGD)")
    dp_target_epsilon = forms.FloatField(initial=DP_DEFAULTS.target_epsilon, label="Target epsilon")
    dp_delta = forms.FloatField(initial=DP_DEFAULTS.delta, label="Delta")
    dp_max_grad_norm = forms.FloatField(initial=DP_DEFAULTS.max_grad_norm, label="Per-example clipping norm")

    LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")
    TRAIN_FIELDS = (
        "epochs",
        "max_steps",
        "learning_rate",
        "batch_size",
        "seed",
        "checkpoint_every",
        "max_seq_len",
    )
    DP_FIELDS = ("dp_enabled", "dp_target_epsilon", "dp_delta", "dp_max_grad_norm")

    def __init__(self, *args, models, data_adapters, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["base_model"].choices = [(m.name, m.name) for m in models]

        default = default_model("lora_base")  # SmolLM2 after `make run`; ML engineers change it
        if default is not None and any(m.pk == default.pk for m in models):
            self.fields["base_model"].initial = default.name
        self.fields["data_adapter"].choices = [(a.name, f"{a.name} — {a.description}") for a in data_adapters]

    def clean_filters(self) -> dict:
        text = (self.cleaned_data.get("filters") or "").strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("Filters must be a JSON object, e.g. {}.")
        return value

    def clean_target_modules(self) -> list[str]:
        return [
            name.strip()
            for name in (self.cleaned_data.get("target_modules") or "").split(",")
            if name.strip()
        ]

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "base_model": data["base_model"],
            "data_adapter": data["data_adapter"],
            "adapter_name": data["adapter_name"],
            "filters": data["filters"],
            **settings_from(data),
        }

    def groups(self):
        """Fields in the order the page shows them: (title, [bound fields])."""
        return [
            ("LoRA", [self[name] for name in self.LORA_FIELDS]),
            ("Training", [self[name] for name in self.TRAIN_FIELDS]),
            ("Differential privacy", [self[name] for name in self.DP_FIELDS]),
        ]
