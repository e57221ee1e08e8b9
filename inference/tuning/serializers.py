"""API input and output shapes of the tuning app. Field names match the job row and the portal form."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inference.models import LoraAdapter
from inference.tuning.lora_config import DPSettings, LoraSettings, TrainSettings
from inference.tuning.models import FineTuneJob

LORA_DEFAULTS, TRAIN_DEFAULTS, DP_DEFAULTS = LoraSettings(), TrainSettings(), DPSettings()
SOURCE_IDS_SHOWN = 200


class JobCreateInput(serializers.Serializer):
    """Types only: the values are checked by the service, against the chosen model and data."""

    base_model = serializers.CharField(max_length=64, help_text="A local model you may fine-tune.")
    data_adapter = serializers.CharField(
        max_length=100, help_text="A registered DataAdapter, e.g. medical.dicom_qa."
    )
    adapter_name = serializers.CharField(
        max_length=64, help_text="Name of the LoRA adapter the job produces."
    )
    filters = serializers.DictField(default=dict, help_text="The data adapter's own filters.")
    lora_r = serializers.IntegerField(default=LORA_DEFAULTS.r)
    lora_alpha = serializers.IntegerField(default=int(LORA_DEFAULTS.alpha))
    lora_dropout = serializers.FloatField(default=LORA_DEFAULTS.dropout)
    target_modules = serializers.ListField(
        child=serializers.CharField(), default=lambda: list(LORA_DEFAULTS.target_modules)
    )
    epochs = serializers.IntegerField(default=TRAIN_DEFAULTS.epochs)
    max_steps = serializers.IntegerField(default=None, allow_null=True)
    learning_rate = serializers.FloatField(default=TRAIN_DEFAULTS.learning_rate)
    batch_size = serializers.IntegerField(default=TRAIN_DEFAULTS.batch_size)
    seed = serializers.IntegerField(default=TRAIN_DEFAULTS.seed)
    checkpoint_every = serializers.IntegerField(default=TRAIN_DEFAULTS.checkpoint_every)
    max_seq_len = serializers.IntegerField(default=TRAIN_DEFAULTS.max_seq_len)
    dp_enabled = serializers.BooleanField(default=False, help_text="Train with DP-SGD (opacus).")
    dp_target_epsilon = serializers.FloatField(default=DP_DEFAULTS.target_epsilon)
    dp_delta = serializers.FloatField(default=DP_DEFAULTS.delta)
    dp_max_grad_norm = serializers.FloatField(default=DP_DEFAULTS.max_grad_norm)

    def validate(self, attrs):
        # A misspelt setting would otherwise be ignored and its default used without a word.
        unknown = (
            sorted(set(self.initial_data) - set(self.fields)) if hasattr(self.initial_data, "keys") else []
        )
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return attrs

    def service_arguments(self) -> dict:
        data = self.validated_data
        return {
            "base_model": data["base_model"],
            "data_adapter": data["data_adapter"],
            "adapter_name": data["adapter_name"],
            "filters": data["filters"],
            **settings_from(data),
        }


def settings_from(data: dict) -> dict:
    """The core's settings dataclasses from flat job fields (the API's and the form's)."""
    return {
        "lora": LoraSettings(
            r=data["lora_r"],
            alpha=data["lora_alpha"],
            dropout=data["lora_dropout"],
            target_modules=tuple(data["target_modules"]),
        ),
        "train": TrainSettings(
            epochs=data["epochs"],
            max_steps=data["max_steps"],
            learning_rate=data["learning_rate"],
            batch_size=data["batch_size"],
            seed=data["seed"],
            checkpoint_every=data["checkpoint_every"],
            max_seq_len=data["max_seq_len"],
        ),
        "dp": DPSettings(
            target_epsilon=data["dp_target_epsilon"],
            delta=data["dp_delta"],
            max_grad_norm=data["dp_max_grad_norm"],
        )
        if data["dp_enabled"]
        else None,
    }


class StatusChangeInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)


class DataAdapterOutput(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    resource = serializers.CharField()
    filter_help = serializers.SerializerMethodField()
    task_metric = serializers.SerializerMethodField()

    def get_filter_help(self, adapter) -> str:
        return getattr(adapter, "filter_help", "")

    def get_task_metric(self, adapter) -> str | None:
        metric = getattr(adapter, "task_metric", None)
        return metric.name if metric is not None else None


@extend_schema_field(
    {
        "type": "string",
        "pattern": f"^({'|'.join(FineTuneJob.Status.values)})$",
        "description": f"One of {', '.join(FineTuneJob.Status.values)}.",
    }
)
class JobStatusField(serializers.CharField):
    """The job's state. A pattern, not an enum: drf-spectacular hoists enums into components named
    after the field, and `status` enums of other apps would collide with this one."""


class JobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = JobStatusField()
    base_model = serializers.CharField(source="base_model.name")
    data_adapter = serializers.CharField()
    adapter_name = serializers.CharField()
    created_by = serializers.CharField(source="created_by.username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    attempts = serializers.IntegerField()
    step = serializers.IntegerField()
    total_steps = serializers.IntegerField()
    progress = serializers.FloatField(source="progress_fraction")
    train_loss = serializers.FloatField(allow_null=True)
    eval_loss = serializers.FloatField(allow_null=True)
    tokens_per_s = serializers.FloatField(allow_null=True)
    eta_s = serializers.FloatField(allow_null=True)
    dp_enabled = serializers.BooleanField()
    spent_epsilon = serializers.FloatField(allow_null=True)
    adapter_id = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()


class SettingsOutput(serializers.Serializer):
    lora_r = serializers.IntegerField()
    lora_alpha = serializers.IntegerField()
    lora_dropout = serializers.FloatField()
    target_modules = serializers.ListField(child=serializers.CharField())
    epochs = serializers.IntegerField()
    max_steps = serializers.IntegerField(allow_null=True)
    learning_rate = serializers.FloatField()
    batch_size = serializers.IntegerField()
    seed = serializers.IntegerField()
    checkpoint_every = serializers.IntegerField()
    max_seq_len = serializers.IntegerField()
    dp_target_epsilon = serializers.FloatField(allow_null=True)
    dp_delta = serializers.FloatField(allow_null=True)
    dp_max_grad_norm = serializers.FloatField(allow_null=True)


class DatasetOutput(serializers.Serializer):
    examples = serializers.IntegerField(source="dataset_examples")
    train_examples = serializers.IntegerField(source="dataset_train_examples")
    eval_examples = serializers.IntegerField(source="dataset_eval_examples")
    content_hash = serializers.CharField(source="dataset_hash")
    query = serializers.CharField(source="dataset_query")
    filters = serializers.JSONField()
    source_ids = serializers.SerializerMethodField(
        help_text=f"The first {SOURCE_IDS_SHOWN} source record ids."
    )

    def get_source_ids(self, job) -> list[str]:
        return job.dataset_source_ids[:SOURCE_IDS_SHOWN]


class LossPointOutput(serializers.Serializer):
    step = serializers.IntegerField()
    train_loss = serializers.FloatField(allow_null=True)
    eval_loss = serializers.FloatField(allow_null=True)


class JobDetailOutput(JobOutput):
    settings = serializers.SerializerMethodField()
    dataset = serializers.SerializerMethodField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    loss_curve = LossPointOutput(many=True)
    log = serializers.CharField()
    evaluation = serializers.JSONField(
        help_text="Base vs adapter on the held-out split (and the task metric)."
    )
    outcome = serializers.JSONField(
        help_text="The training run's figures: steps, tokens, seconds, resume point."
    )

    @extend_schema_field(SettingsOutput)
    def get_settings(self, job) -> dict:
        return SettingsOutput(job).data

    @extend_schema_field(DatasetOutput)
    def get_dataset(self, job) -> dict:
        return DatasetOutput(job).data


class AdapterOutput(serializers.Serializer):
    id = serializers.IntegerField()
    base_model = serializers.CharField(source="base_model.name")
    name = serializers.CharField()
    model = serializers.SerializerMethodField(help_text="What to put in `model` of /v1/chat/completions.")
    status = serializers.ChoiceField(choices=LoraAdapter.Status.choices)
    source = serializers.CharField()
    path = serializers.CharField()
    evaluation = serializers.JSONField()
    created_at = serializers.DateTimeField()
    status_changed_at = serializers.DateTimeField(allow_null=True)

    def get_model(self, adapter) -> str:
        return f"{adapter.base_model.name}:{adapter.name}"
