"""Fine-tune jobs: what was asked, on which data snapshot, how it ran, and what it produced."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models

from inference.tuning.lora_config import DPSettings, LoraSettings, TrainSettings


def new_storage_key() -> str:
    return uuid.uuid4().hex


class FineTuneJob(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"
        SUCCEEDED = "succeeded", "Succeeded"

    ACTIVE = (Status.QUEUED, Status.RUNNING, Status.CANCELLING)
    FINISHED = (Status.CANCELLED, Status.FAILED, Status.SUCCEEDED)
    # A worker holds the job in these states and must keep its heartbeat fresh.
    CLAIMED = (Status.RUNNING, Status.CANCELLING)
    RETRYABLE = (Status.FAILED, Status.CANCELLED)

    base_model = models.ForeignKey("inference.LanguageModel", on_delete=models.PROTECT, related_name="+")
    data_adapter = models.CharField(max_length=100)
    # The DataAdapter's policy resource when the job was created (re-checked when the job runs).
    data_adapter_resource = models.CharField(max_length=200, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    adapter_name = models.CharField(max_length=64)
    # LoRA
    lora_r = models.PositiveSmallIntegerField(default=16)
    lora_alpha = models.PositiveSmallIntegerField(default=32)
    lora_dropout = models.FloatField(default=0.1)
    target_modules = models.JSONField(default=list)
    # training
    epochs = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    max_steps = models.PositiveIntegerField(null=True, blank=True)
    learning_rate = models.FloatField(default=2e-4)
    batch_size = models.PositiveSmallIntegerField(default=8, validators=[MinValueValidator(1)])
    seed = models.IntegerField(default=0)
    checkpoint_every = models.PositiveIntegerField(default=20)
    max_seq_len = models.PositiveIntegerField(default=256)
    # differential privacy
    dp_enabled = models.BooleanField(default=False)
    dp_target_epsilon = models.FloatField(null=True, blank=True)
    dp_delta = models.FloatField(null=True, blank=True)
    dp_max_grad_norm = models.FloatField(null=True, blank=True)
    spent_epsilon = models.FloatField(null=True, blank=True)
    # dataset snapshot (reproducible, auditable); the examples themselves are sealed on disk
    dataset_examples = models.PositiveIntegerField(default=0)
    dataset_train_examples = models.PositiveIntegerField(default=0)
    dataset_eval_examples = models.PositiveIntegerField(default=0)
    dataset_hash = models.CharField(max_length=64, blank=True)
    dataset_source_ids = models.JSONField(default=list, blank=True)
    dataset_query = models.TextField(blank=True)
    # lifecycle
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    task_id = models.CharField(max_length=64, blank=True)
    # Fencing token of the execution that holds the job: writes from any other execution are ignored.
    claim_token = models.CharField(max_length=32, blank=True)
    # Names the job's folders (output, sealed snapshot); unlike the pk it is never reused.
    storage_key = models.CharField(max_length=32, default=new_storage_key, editable=False)
    # progress
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    train_loss = models.FloatField(null=True, blank=True)
    eval_loss = models.FloatField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    eta_s = models.FloatField(null=True, blank=True)
    loss_curve = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    # results
    outcome = models.JSONField(default=dict, blank=True)
    evaluation = models.JSONField(default=dict, blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    adapter = models.OneToOneField(
        "inference.LoraAdapter", null=True, blank=True, on_delete=models.SET_NULL, related_name="job"
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(lora_r__gte=1), name="fine_tune_job_lora_rank_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(dp_enabled=False) | models.Q(dp_target_epsilon__gt=0),
                name="fine_tune_job_dp_budget_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.adapter_name} on {self.base_model_id})"

    @property
    def progress_fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def can_retry(self) -> bool:
        return self.status in self.RETRYABLE

    def policy_resources(self) -> list[str]:
        """What the acting user must be allowed to `fine_tune`: the base model and the data's resource."""
        resources = [f"model:{self.base_model.name}"]
        if self.data_adapter_resource and self.data_adapter_resource not in resources:
            resources.append(self.data_adapter_resource)
        return resources

    def lora_settings(self) -> LoraSettings:
        return LoraSettings(
            r=self.lora_r,
            alpha=self.lora_alpha,
            dropout=self.lora_dropout,
            target_modules=self.target_modules,
        )

    def train_settings(self) -> TrainSettings:
        return TrainSettings(
            epochs=self.epochs,
            max_steps=self.max_steps,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            seed=self.seed,
            max_seq_len=self.max_seq_len,
            checkpoint_every=self.checkpoint_every,
        )

    def dp_settings(self) -> DPSettings | None:
        if not self.dp_enabled:
            return None
        return DPSettings(
            target_epsilon=self.dp_target_epsilon, delta=self.dp_delta, max_grad_norm=self.dp_max_grad_norm
        )
