"""The de-identified imaging index: pseudonymous patients, studies, series, instances; rejected files;
questions asked about studies.

Nothing here holds patient identity. UIDs are the keyed pseudonyms written by de-identification,
the patient is a keyed pseudonym, and the identified original of each instance exists only sealed
by the vault (Instance.original_name names it in the encrypted store).

A study belongs to one department (the one that sent or uploaded it). The same study sent by two
departments is held twice, once per department, so neither can learn from an upload whether the
other holds it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from access.grants import grant_permissions


class Channel(models.TextChoices):
    PORTAL = "portal", "Portal upload"
    API = "api", "API upload"
    SCP = "scp", "DICOM network (C-STORE)"
    DEMO = "demo", "Demo data"
    EVALUATION = "evaluation", "Evaluation run"


class Patient(models.Model):
    department = models.SlugField(max_length=64)
    pseudonym = models.CharField(
        max_length=64, help_text="Keyed pseudonym of the Patient ID, e.g. ANON-3F2A9C01B4."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["department", "pseudonym"], name="medical_patient_unique_per_department"
            )
        ]

    def __str__(self) -> str:
        return self.pseudonym


class Study(models.Model):
    class BurnedInReview(models.TextChoices):
        NOT_REQUIRED = "not_required", "Not required"
        PENDING = "pending", "Review pending"
        CLEARED = "cleared", "Reviewed: no identifying text"
        WITHHELD = "withheld", "Reviewed: identifying text, kept from models"

    department = models.SlugField(max_length=64)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="studies")
    study_instance_uid = models.CharField(max_length=64)
    study_date = models.DateField(null=True, blank=True)
    study_time = models.TimeField(null=True, blank=True)
    description = models.CharField(max_length=128, blank=True)
    modalities = models.CharField(
        max_length=64, blank=True, help_text='Sorted, "\\"-separated, e.g. "CT\\SR".'
    )
    burned_in_review = models.CharField(
        max_length=16, choices=BurnedInReview.choices, default=BurnedInReview.NOT_REQUIRED
    )
    burned_in_reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    burned_in_reviewed_at = models.DateTimeField(null=True, blank=True)
    received_via = models.CharField(max_length=16, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # The access policy's view of a study (see platform/access/resources.py).
    policy_resource_type = "study"
    policy_field_map = {"department": "department"}

    class Meta:
        ordering = ["-created_at", "-pk"]
        permissions = grant_permissions("study", ["upload", "ask", "share", "break_glass"])
        constraints = [
            models.UniqueConstraint(
                fields=["department", "study_instance_uid"], name="medical_study_unique_per_department"
            )
        ]
        indexes = [models.Index(fields=["department", "-created_at"], name="medical_study_dept_recent")]

    def __str__(self) -> str:
        return f"Study {self.pk} ({self.modalities or 'no modality'}, {self.department})"

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"department": self.department}

    @property
    def usable_by_models(self) -> bool:
        """Instances that may show burned-in text stay away from models until a person cleared them."""
        return self.burned_in_review in (self.BurnedInReview.NOT_REQUIRED, self.BurnedInReview.CLEARED)


class StudyUserObjectPermission(UserObjectPermissionBase):
    """Per-study grants to a named user (sharing), in guardian's direct foreign-key table."""

    content_object = models.ForeignKey(Study, on_delete=models.CASCADE)


class StudyGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Study, on_delete=models.CASCADE)


class Series(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    series_instance_uid = models.CharField(max_length=64)
    modality = models.CharField(max_length=16, blank=True)
    series_number = models.IntegerField(null=True, blank=True)
    description = models.CharField(max_length=128, blank=True)
    body_part_examined = models.CharField(max_length=64, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    manufacturer_model_name = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["series_number", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "series_instance_uid"], name="medical_series_unique_in_study"
            )
        ]

    def __str__(self) -> str:
        return f"Series {self.series_number or self.pk} ({self.modality})"


class Instance(models.Model):
    class BurnedIn(models.TextChoices):
        YES = "yes", "Yes"
        NO = "no", "No"
        UNKNOWN = "unknown", "Unknown (modality may burn in text)"

    class PreviewStatus(models.TextChoices):
        PENDING = "pending", "Pending"
        READY = "ready", "Ready"
        UNAVAILABLE = "unavailable", "No preview (no pixels or no decoder)"
        FAILED = "failed", "Failed"

    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="instances")
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64)
    sop_class_name = models.CharField(max_length=128, blank=True)
    instance_number = models.IntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True)
    columns = models.PositiveIntegerField(null=True, blank=True)
    number_of_frames = models.PositiveIntegerField(null=True, blank=True)
    photometric_interpretation = models.CharField(max_length=32, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    has_pixel_data = models.BooleanField(default=False)
    burned_in = models.CharField(max_length=8, choices=BurnedIn.choices, default=BurnedIn.NO)
    # The de-identified copy, relative to MEDIA_ROOT; the only copy clinicians and models ever see.
    deidentified_file = models.CharField(max_length=400)
    deidentified_size = models.PositiveBigIntegerField()
    deidentified_sha256 = models.CharField(max_length=64)
    # The identified original as received, sealed by the vault; read only through break-glass.
    original_name = models.CharField(max_length=400)
    original_size = models.PositiveBigIntegerField()
    original_sha256 = models.CharField(max_length=64)
    preview_file = models.CharField(max_length=400, blank=True)
    preview_status = models.CharField(
        max_length=16, choices=PreviewStatus.choices, default=PreviewStatus.PENDING
    )
    deid_profile = models.CharField(max_length=128)
    deid_options = models.JSONField(default=dict)
    deid_summary = models.JSONField(
        default=dict, help_text="Number of attributes per action (D, Z, X, K, C, U)."
    )
    removed_keywords = models.JSONField(
        null=True,
        blank=True,
        help_text="Keywords the original carried and de-identification removed or replaced (null: not known).",
    )
    received_via = models.CharField(max_length=16, choices=Channel.choices)
    received_from = models.CharField(max_length=128, help_text="User name, or the calling AE title.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instance_number", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["series", "sop_instance_uid"], name="medical_instance_unique_in_series"
            )
        ]
        indexes = [models.Index(fields=["sop_instance_uid"], name="medical_instance_sop_uid")]

    def __str__(self) -> str:
        return f"Instance {self.instance_number or self.pk} ({self.sop_class_name or self.sop_class_uid})"

    @property
    def study(self) -> Study:
        return self.series.study


class QuarantinedFile(models.Model):
    """A file refused at ingest, with the reason given to the sender. Its bytes are kept sealed, if kept."""

    department = models.SlugField(max_length=64)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    received_from = models.CharField(max_length=128)
    filename = models.CharField(max_length=255, blank=True)
    reason = models.CharField(max_length=500)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    sealed_name = models.CharField(max_length=400, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["department", "-created_at"], name="medical_quarantine_recent")]

    def __str__(self) -> str:
        return f"{self.filename or 'unnamed file'}: {self.reason}"


class StudyQuestion(models.Model):
    """One question about a study and the grounded answer given, with the attributes it rests on."""

    class Grounding(models.TextChoices):
        ANSWERED = "answered", "Answered from the header"
        NOT_RECORDED = "not_recorded", "The header does not record it"
        REMOVED = "removed", "Removed by de-identification"
        NO_MATCH = "no_match", "No attribute matches the question"

    class Phrasing(models.TextChoices):
        MODEL = "model", "Phrased by the model (verified)"
        EXTRACTIVE = "extractive", "Built from the attribute"
        WITHHELD = "withheld", "Withheld (removed data)"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="questions")
    series = models.ForeignKey(Series, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    instance = models.ForeignKey(Instance, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    question = models.TextField()
    answer = models.TextField()
    grounding = models.CharField(max_length=16, choices=Grounding.choices)
    phrasing = models.CharField(max_length=16, choices=Phrasing.choices)
    attributes = models.JSONField(
        default=list, help_text="[{tag, keyword, name, value, path}] the answer rests on."
    )
    removed_attributes = models.JSONField(default=list, help_text="Keywords asked for that were removed.")
    model_name = models.CharField(max_length=140, blank=True)
    model_version = models.CharField(max_length=64, blank=True)
    adapter_name = models.CharField(max_length=64, blank=True)
    generation_id = models.BigIntegerField(
        null=True, blank=True, help_text="inference Generation row, if any."
    )
    note = models.CharField(max_length=300, blank=True)
    grounding_score = models.FloatField(
        null=True, blank=True, help_text="How sure the answer is of its grounding, 0 to 1."
    )
    latency_ms = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"Q{self.pk} on study {self.study_id}"
