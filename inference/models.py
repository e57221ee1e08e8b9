"""The model registry: local Hugging Face directories or remote OpenAI-compatible servers, and
the LoRA adapters that may be served on top of a local model."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

model_name_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9_.-]{0,63}$", "Use 1-64 lower-case letters, digits, '_', '.' or '-' (e.g. medical_qa)."
)


class LanguageModel(models.Model):
    """A servable model. Its name is what clients put in `model` and what the policy calls `model:<name>`."""

    class Backend(models.TextChoices):
        LOCAL = "local", "Local (llama.cpp for a GGUF, else transformers)"
        REMOTE = "remote", "Remote OpenAI-compatible server"

    class Quantization(models.TextChoices):
        NONE = "none", "None (as stored)"
        INT8 = "int8", "int8 weights (CPU)"
        INT4 = "int4", "4-bit (GPU + bitsandbytes)"
        # GGUF files carry their own quantization (llama.cpp engine).
        F32 = "f32", "GGUF f32"
        F16 = "f16", "GGUF f16"
        Q8_0 = "q8_0", "GGUF Q8_0"
        Q4_K_M = "q4_k_m", "GGUF Q4_K_M"
        Q4_1 = "q4_1", "GGUF Q4_1"
        Q4_0 = "q4_0", "GGUF Q4_0"

    name = models.CharField(max_length=64, unique=True, validators=[model_name_validator])
    description = models.CharField(max_length=300, blank=True)
    backend = models.CharField(max_length=16, choices=Backend.choices, default=Backend.LOCAL)
    path = models.CharField(max_length=500, blank=True, help_text="Local Hugging Face-format directory.")
    gguf_path = models.CharField(
        max_length=500,
        blank=True,
        help_text="GGUF file served by the llama.cpp engine (empty: transformers).",
    )
    licence = models.CharField(
        max_length=100, blank=True, help_text="Licence of the weights, e.g. apache-2.0."
    )
    remote_url = models.URLField(
        blank=True, help_text="Base URL of an OpenAI-compatible server, e.g. http://gpu1:8000/v1"
    )
    remote_model = models.CharField(max_length=200, blank=True, help_text="Model id on the remote server.")
    remote_api_key_env = models.CharField(
        max_length=100,
        blank=True,
        help_text="Name of the environment variable that holds the remote API key.",
    )
    quantization = models.CharField(max_length=16, choices=Quantization.choices, default=Quantization.NONE)
    draft = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Smaller model with the same tokenizer, for speculative decoding.",
    )
    architecture = models.CharField(max_length=100, blank=True)
    parameter_count = models.BigIntegerField(default=0)
    dtype = models.CharField(max_length=20, blank=True)
    context_length = models.PositiveIntegerField(default=0)
    vocab_size = models.PositiveIntegerField(default=0)
    info = models.JSONField(default=dict, blank=True)
    max_concurrency = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])
    max_queue = models.PositiveSmallIntegerField(default=16)
    is_active = models.BooleanField(default=True)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    policy_resource_type = "model"
    policy_field_map = {"name": "name", "backend": "backend", "qa_default": "defaults__qa_default"}

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(backend="local") & ~models.Q(path=""))
                | (models.Q(backend="remote") & ~models.Q(remote_url="")),
                name="language_model_has_location",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def policy_name(self) -> str:
        return self.name

    @property
    def engine(self) -> str:
        """Which engine serves it: llamacpp (a GGUF file), transformers (an HF directory) or remote."""
        if self.backend == self.Backend.REMOTE:
            return "remote"
        return "llamacpp" if self.gguf_path else "transformers"

    def policy_attributes(self) -> dict:
        # qa_default: "yes" while this model phrases grounded answers by default, so the policy can
        # let clinical staff use whichever model ML engineers make the QA default (default.yaml).
        # (inference.services reads it with the row: `policy_qa_default`, so a decision needs no query.)
        qa_default = getattr(self, "policy_qa_default", None)
        if qa_default is None:
            qa_default = ModelDefault.objects.filter(model_id=self.pk, qa_default="yes").exists()
        return {"backend": self.backend, "qa_default": "yes" if qa_default else None}


class LoraAdapter(models.Model):
    """Trained LoRA weights (peft format) for a local base model. Only promoted adapters are served."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        PROMOTED = "promoted", "Promoted (servable)"
        DEMOTED = "demoted", "Demoted"

    base_model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="adapters")
    name = models.CharField(max_length=64, validators=[model_name_validator])
    path = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CANDIDATE)
    evaluation = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="What produced it, e.g. tuning job 12.")
    created_at = models.DateTimeField(auto_now_add=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["base_model__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["base_model", "name"], name="unique_adapter_name_per_model")
        ]

    def __str__(self) -> str:
        return f"{self.base_model.name}:{self.name}"

    @property
    def servable(self) -> bool:
        return self.status == self.Status.PROMOTED


class Generation(models.Model):
    """One served completion. Digests always; the full text only sealed by the vault, if configured."""

    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="generations")
    adapter = models.ForeignKey(LoraAdapter, null=True, blank=True, on_delete=models.PROTECT)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    endpoint = models.CharField(max_length=40)
    prompt_sha256 = models.CharField(max_length=64)
    output_sha256 = models.CharField(max_length=64)
    prompt_tokens = models.PositiveIntegerField()
    completion_tokens = models.PositiveIntegerField()
    cached_prompt_tokens = models.PositiveIntegerField(default=0)
    finish_reason = models.CharField(max_length=16)
    latency_ms = models.FloatField()
    ttft_ms = models.FloatField(null=True)
    sealed_text = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"generation {self.pk} on {self.model_id}"


class ModelDefault(models.Model):
    """Which registered model (and optionally which of its promoted LoRA adapters) serves a purpose
    by default (chat, QA phrasing, LoRA base).

    ML engineers change it in the portal; each change is policy-checked and trailed."""

    class Purpose(models.TextChoices):
        CHAT = "chat", "Chat (playground, /v1 without a model)"
        QA = "qa", "Question answering (phrasing grounded answers)"
        LORA_BASE = "lora_base", "Base model of LoRA jobs"

    purpose = models.CharField(max_length=16, choices=Purpose.choices, unique=True)
    model = models.ForeignKey(LanguageModel, on_delete=models.CASCADE, related_name="defaults")
    adapter = models.ForeignKey(
        LoraAdapter,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="A promoted LoRA adapter of the model, served with it (a demoted one is not).",
    )
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    changed_at = models.DateTimeField(auto_now=True)
    # The policy's `resource.qa_default` of the model, as a column so that access.querysets.restrict
    # filters on exactly what LanguageModel.policy_attributes() gives decide().
    qa_default = models.GeneratedField(
        expression=models.Case(
            models.When(purpose="qa", then=models.Value("yes")), default=models.Value("no")
        ),
        output_field=models.CharField(max_length=3),
        db_persist=True,
    )

    class Meta:
        ordering = ["purpose"]

    def __str__(self) -> str:
        suffix = f":{self.adapter.name}" if self.adapter_id else ""
        return f"{self.purpose}: {self.model.name}{suffix}"
