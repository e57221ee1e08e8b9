"""Predictive maintenance: the asset hierarchy (site -> line -> machine -> component), sensors,
vibration recordings and their analyses, condition data and remaining-useful-life models, alerts,
work orders and inspections, and the failure code tables.

A machine and a work order belong to one site (the `site` slug, denormalised from the hierarchy so
the access policy can filter on it: `resource.site: subject.site`).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from access.grants import grant_permissions


class Criticality(models.TextChoices):
    A = "A", "A: safety or production critical"
    B = "B", "B: important"
    C = "C", "C: run to failure"


class Site(models.Model):
    code = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name or self.code


class Line(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="lines")
    name = models.CharField(max_length=128)

    class Meta:
        ordering = ["site", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="manufacturing_line_unique_in_site")
        ]

    def __str__(self) -> str:
        return f"{self.site.code} / {self.name}"


class Machine(models.Model):
    """An asset: the unit a work order, a recording and condition data belong to."""

    class IsoGroup(models.TextChoices):
        GROUP1 = "group1", "ISO 10816-3 group 1 (300 kW - 50 MW)"
        GROUP2 = "group2", "ISO 10816-3 group 2 (15 - 300 kW)"

    class Foundation(models.TextChoices):
        RIGID = "rigid", "Rigid"
        FLEXIBLE = "flexible", "Flexible"

    line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="machines")
    site = models.SlugField(max_length=64, help_text="The site code, copied from the line.")
    tag = models.SlugField(max_length=64, help_text="Plant tag, e.g. CWC04009.")
    name = models.CharField(max_length=128)
    family = models.SlugField(
        max_length=64, blank=True, help_text="Asset family for RUL models, e.g. turbofan."
    )
    criticality = models.CharField(max_length=1, choices=Criticality.choices, default=Criticality.B)
    iso_group = models.CharField(max_length=8, choices=IsoGroup.choices, default=IsoGroup.GROUP2)
    foundation = models.CharField(max_length=8, choices=Foundation.choices, default=Foundation.RIGID)
    zone_limits = models.JSONField(
        default=dict,
        blank=True,
        help_text='Editable zone boundaries in mm/s RMS, {"A/B": 1.4, "B/C": 2.8, "C/D": 4.5}; empty = ISO default.',
    )
    rated_rpm = models.FloatField(null=True, blank=True)
    rul_alert_threshold = models.FloatField(
        default=30.0, help_text="Alert when predicted RUL (cycles) is below."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    policy_resource_type = "asset"
    policy_field_map = {"site": "site"}

    class Meta:
        ordering = ["site", "tag"]
        permissions = grant_permissions("asset", ["view"])
        constraints = [
            models.UniqueConstraint(fields=["site", "tag"], name="manufacturing_machine_unique_tag")
        ]

    def __str__(self) -> str:
        return f"{self.tag} {self.name}"

    def save(self, *args, **kwargs):
        if self.line_id and not self.site:
            self.site = self.line.site.code
        super().save(*args, **kwargs)

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"site": self.site}


class MachineUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Machine, on_delete=models.CASCADE)


class MachineGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Machine, on_delete=models.CASCADE)


class BearingGeometry(models.Model):
    """Rolling element bearing geometry (for defect frequencies BPFO, BPFI, BSF, FTF)."""

    designation = models.CharField(max_length=64, unique=True, help_text="e.g. SKF 6205-2RS JEM")
    ball_count = models.PositiveSmallIntegerField()
    ball_diameter_mm = models.FloatField()
    pitch_diameter_mm = models.FloatField()
    contact_angle_deg = models.FloatField(default=0.0)

    class Meta:
        verbose_name_plural = "bearing geometries"

    def __str__(self) -> str:
        return self.designation


class Component(models.Model):
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="components")
    name = models.CharField(max_length=128)
    kind = models.SlugField(max_length=64, blank=True, help_text="e.g. bearing, motor, pump, gearbox.")
    bearing = models.ForeignKey(BearingGeometry, null=True, blank=True, on_delete=models.SET_NULL)
    criticality = models.CharField(max_length=1, choices=Criticality.choices, default=Criticality.B)

    class Meta:
        ordering = ["machine", "name"]

    def __str__(self) -> str:
        return f"{self.machine.tag} / {self.name}"


class Sensor(models.Model):
    class Kind(models.TextChoices):
        ACCELEROMETER = "accelerometer", "Accelerometer"
        VELOCITY = "velocity", "Velocity probe"
        TEMPERATURE = "temperature", "Temperature"
        PRESSURE = "pressure", "Pressure"
        OTHER = "other", "Other"

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="sensors")
    component = models.ForeignKey(Component, null=True, blank=True, on_delete=models.SET_NULL)
    name = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ACCELEROMETER)
    units = models.CharField(max_length=16, default="g")
    location = models.CharField(max_length=64, blank=True, help_text="e.g. drive end, horizontal.")

    def __str__(self) -> str:
        return f"{self.machine.tag} / {self.name}"


class VibrationRecording(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Analysis pending"
        DONE = "done", "Analysed"
        FAILED = "failed", "Analysis failed"

    class Units(models.TextChoices):
        G = "g", "Acceleration (g)"
        MS2 = "m/s2", "Acceleration (m/s²)"
        MMS = "mm/s", "Velocity (mm/s)"

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="recordings")
    component = models.ForeignKey(Component, null=True, blank=True, on_delete=models.SET_NULL)
    sensor = models.ForeignKey(Sensor, null=True, blank=True, on_delete=models.SET_NULL)
    file = models.FileField(upload_to="manufacturing/recordings/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=8, default="csv")
    channel = models.CharField(
        max_length=64, blank=True, help_text="Column or variable read, in a file with several channels."
    )
    sample_rate = models.FloatField(help_text="Samples per second.")
    units = models.CharField(max_length=8, choices=Units.choices, default=Units.G)
    rpm = models.FloatField(help_text="Shaft speed during the recording.")
    sample_count = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(
        max_length=64, blank=True, help_text="Of the file: the same upload sent again is kept once."
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    recorded_at = models.DateTimeField(
        default=timezone.now,
        help_text="When it was measured: the upload's time unless given (a route's recordings are "
        "often uploaded later, and the phone's outbox sends when it can).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            models.Index(fields=["machine", "sha256"], name="manufacturing_rec_sha256"),
            models.Index(fields=["machine", "-recorded_at"], name="manufacturing_rec_measured"),
        ]

    def __str__(self) -> str:
        return f"Recording {self.pk} on {self.machine.tag}"

    @property
    def uploaded_late(self) -> bool:
        """Uploaded more than ten minutes after it was measured (worth saying on the asset page)."""
        return bool(self.created_at and self.recorded_at) and (
            (self.created_at - self.recorded_at).total_seconds() > 600
        )


class VibrationAnalysis(models.Model):
    """The result of manufacturing.analysis.vibration.analyse for one recording."""

    recording = models.OneToOneField(VibrationRecording, on_delete=models.CASCADE, related_name="analysis")
    rms_velocity = models.FloatField(help_text="mm/s RMS, 10-1000 Hz.")
    peak = models.FloatField()
    crest_factor = models.FloatField()
    kurtosis = models.FloatField()
    zone = models.CharField(max_length=1, help_text="ISO 10816-3 zone A-D.")
    fault = models.CharField(max_length=32, blank=True, help_text="Fault call, e.g. outer_race.")
    result = models.JSONField(
        default=dict, help_text="The full analysis (spectra, fault frequencies, evidence)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Analysis of recording {self.recording_id}: zone {self.zone}"


class ConditionRecord(models.Model):
    """One cycle of run-to-failure condition data (e.g. a C-MAPSS row: settings and 21 sensors)."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="condition_records")
    unit = models.PositiveIntegerField(help_text="Engine / unit number in the source file.")
    cycle = models.PositiveIntegerField()
    settings = models.JSONField(default=list)
    sensors = models.JSONField(default=list)
    source = models.CharField(max_length=128, blank=True)

    class Meta:
        ordering = ["machine", "unit", "cycle"]
        constraints = [
            models.UniqueConstraint(
                fields=["machine", "unit", "cycle"], name="manufacturing_condition_unique_cycle"
            )
        ]

    def __str__(self) -> str:
        return f"{self.machine_id} unit {self.unit} cycle {self.cycle}"


class RulModelVersion(models.Model):
    family = models.SlugField(max_length=64)
    version = models.PositiveIntegerField()
    blob = models.BinaryField(help_text="RulModel.to_bytes().")
    description = models.JSONField(default=dict)
    trained_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["family", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["family", "version"], name="manufacturing_rul_model_unique_version"
            )
        ]

    def __str__(self) -> str:
        return f"RUL model {self.family} v{self.version}"

    @property
    def replacement_point(self) -> int | None:
        """The predicted RUL at or below which this model's plan replaces a unit (`train_prognostics`:
        chosen on its training units' out-of-fold predictions for the stated failure cost); None for a
        model stored without one."""
        return self._replacement_plan.get("replace_at_rul")

    @property
    def replacement_lead_time(self) -> int:
        """Cycles between setting a replacement in motion and doing it (parts, crew) that the plan
        was chosen for; 0 when it replaces at once."""
        return int(self._replacement_plan.get("lead_time") or 0)

    @property
    def replacement_action(self) -> str:
        """What an engineer does once a prediction reaches the replacement point."""
        lead = self.replacement_lead_time
        return f"order parts now, replace within {lead} cycles" if lead else "replace now"

    @property
    def _replacement_plan(self) -> dict:
        return (self.description or {}).get("replacement_plan") or {}


class FailureClassifierVersion(models.Model):
    """A fitted failure-mode classifier (manufacturing.analysis.failure_modes), stored as a joblib file
    under MODEL_ROOT; the row is the trust anchor: its sha256 is checked before the file is loaded."""

    version = models.PositiveIntegerField(unique=True)
    path = models.CharField(max_length=255, help_text="joblib file, relative to MODEL_ROOT.")
    sha256 = models.CharField(max_length=64)
    examples = models.PositiveIntegerField(default=0)
    reviews_used = models.PositiveIntegerField(
        default=0, help_text="Engineer-reviewed suggestions among the training examples."
    )
    description = models.JSONField(default=dict)
    trained_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"Failure-mode classifier v{self.version}"


class RulPrediction(models.Model):
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="rul_predictions")
    model = models.ForeignKey(RulModelVersion, on_delete=models.PROTECT, related_name="predictions")
    unit = models.PositiveIntegerField()
    cycle = models.PositiveIntegerField(
        null=True, blank=True, help_text="The unit's last recorded cycle the prediction was made at."
    )
    rul = models.FloatField()
    lower = models.FloatField()
    upper = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"RUL {self.rul:.0f} [{self.lower:.0f}, {self.upper:.0f}] for {self.machine_id}"

    @property
    def at_cap(self) -> bool:
        """Predicted at the model's cap: no wear visible yet, so the RUL is a floor (its band's upper
        bound says how much longer such units have lasted)."""
        cap = ((self.model.description or {}).get("config") or {}).get("cap")
        return isinstance(cap, int | float) and self.rul >= cap - 0.5


class Alert(models.Model):
    class Kind(models.TextChoices):
        VIBRATION_ZONE = "vibration_zone", "Vibration zone C/D"
        DEFECT = "defect", "Defect called in zone A/B"
        WEAR = "wear", "Wear at or near tolerance"
        RUL = "rul", "Remaining useful life below threshold"
        INSPECTION = "inspection", "Failed inspection item"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Work order filed"
        CLOSED = "closed", "Closed"

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    severity = models.CharField(max_length=8, default="warning")
    message = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    recording = models.ForeignKey(VibrationRecording, null=True, blank=True, on_delete=models.SET_NULL)
    prediction = models.ForeignKey(RulPrediction, null=True, blank=True, on_delete=models.SET_NULL)
    # the registered 3-D scan whose wear raised it
    scan = models.ForeignKey(
        "ScanComparison", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.machine_id}: {self.message}"


class FailureCode(models.Model):
    """Failure mode / cause / action codes (ISO 14224 style), imported from shared/data/work_orders."""

    class Kind(models.TextChoices):
        MODE = "mode", "Failure mode"
        CAUSE = "cause", "Failure cause"
        ACTION = "action", "Action"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    code = models.CharField(max_length=32)
    description = models.CharField(max_length=255)
    parent_code = models.CharField(max_length=32, blank=True)
    category = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["kind", "code"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "code"], name="manufacturing_failure_code_unique")
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class WorkOrder(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        ON_HOLD = "on_hold", "On hold"
        COMPLETE = "complete", "Complete"
        CANCELLED = "cancelled", "Cancelled"

    class Priority(models.IntegerChoices):
        EMERGENCY = 1, "1 Emergency"
        HIGH = 2, "2 High"
        MEDIUM = 3, "3 Medium"
        LOW = 4, "4 Low"

    TRANSITIONS = {
        Status.OPEN: {Status.IN_PROGRESS, Status.CANCELLED},
        Status.IN_PROGRESS: {Status.ON_HOLD, Status.COMPLETE, Status.CANCELLED},
        Status.ON_HOLD: {Status.IN_PROGRESS, Status.CANCELLED},
        Status.COMPLETE: set(),
        Status.CANCELLED: set(),
    }
    TERMINAL = (Status.COMPLETE, Status.CANCELLED)

    site = models.SlugField(max_length=64)
    machine = models.ForeignKey(
        Machine, null=True, blank=True, on_delete=models.PROTECT, related_name="work_orders"
    )
    component = models.ForeignKey(Component, null=True, blank=True, on_delete=models.SET_NULL)
    alert = models.ForeignKey(
        Alert, null=True, blank=True, on_delete=models.SET_NULL, related_name="work_orders"
    )
    # the 3-D scan whose wear it was filed for (its deviation map is the evidence)
    scan = models.ForeignKey(
        "ScanComparison", null=True, blank=True, on_delete=models.SET_NULL, related_name="work_orders"
    )
    external_id = models.CharField(max_length=64, blank=True, help_text="ID in the imported history.")
    equipment_label = models.CharField(
        max_length=128, blank=True, help_text="Equipment as named in the history."
    )
    title = models.CharField(max_length=255)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.MEDIUM)
    preventive = models.BooleanField(default=False)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.CharField(max_length=64, blank=True)
    due = models.DateField(null=True, blank=True)
    labour_hours = models.FloatField(default=0.0)
    downtime_hours = models.FloatField(default=0.0)
    failure_mode = models.CharField(max_length=32, blank=True)
    failure_cause = models.CharField(max_length=32, blank=True)
    action_code = models.CharField(max_length=32, blank=True)
    closing_notes = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    submission_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="The filer's key for this submission (form or Idempotency-Key): a repeat files nothing.",
    )
    plan = models.ForeignKey(
        "MaintenancePlan",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="work_orders",
        help_text="The preventive maintenance plan that filed it.",
    )

    policy_resource_type = "work_order"
    policy_field_map = {"site": "site"}

    class Meta:
        ordering = ["-created_at", "-pk"]
        # codenames <action>_workorder, as access.grants.codename_for looks them up
        permissions = grant_permissions("workorder", ["file", "work", "close", "share"])
        indexes = [models.Index(fields=["site", "status"], name="manufacturing_wo_site_status")]
        constraints = [
            models.UniqueConstraint(
                fields=["created_by", "submission_key"],
                condition=~models.Q(submission_key=""),
                name="manufacturing_wo_submission_once",
            )
        ]

    def __str__(self) -> str:
        return f"WO {self.external_id or self.pk}: {self.title}"

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"site": self.site}


class WorkOrderUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(WorkOrder, on_delete=models.CASCADE)


class WorkOrderGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(WorkOrder, on_delete=models.CASCADE)


class WorkOrderAttachment(models.Model):
    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="manufacturing/attachments/%Y/%m/")
    original_name = models.CharField(max_length=255, blank=True)
    content_type = models.CharField(max_length=64, blank=True)
    sha256 = models.CharField(
        max_length=64, blank=True, help_text="Of the bytes: the same photo sent again is kept once."
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["work_order", "sha256"],
                condition=~models.Q(sha256=""),
                name="manufacturing_attachment_once",
            )
        ]

    def __str__(self) -> str:
        return self.original_name or self.file.name


class WorkOrderEvent(models.Model):
    """The work order's own history (the trail holds the authoritative copy)."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"WO {self.work_order_id}: {self.from_status} -> {self.to_status}"


class FailureSuggestion(models.Model):
    """An assistant suggestion for a work order and what the engineer made of it."""

    class Verdict(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        CORRECTED = "corrected", "Corrected"

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="suggestions")
    problem = models.TextField(blank=True, help_text="The engineer's description the suggestion answers.")
    suggested_code = models.CharField(max_length=32, blank=True)
    diagnosis = models.TextField(blank=True)
    evidence = models.JSONField(default=list)
    model_name = models.CharField(max_length=128, blank=True, help_text="The LLM that drafted the diagnosis.")
    generation_id = models.PositiveBigIntegerField(null=True, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.PENDING)
    final_code = models.CharField(max_length=32, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"WO {self.work_order_id}: {self.suggested_code} ({self.verdict})"


class InspectionTemplate(models.Model):
    name = models.CharField(max_length=128)
    items = models.JSONField(default=list, help_text="Checklist item texts.")

    def __str__(self) -> str:
        return self.name


class Inspection(models.Model):
    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="inspections")
    template = models.ForeignKey(InspectionTemplate, null=True, blank=True, on_delete=models.SET_NULL)
    inspector = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submission_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="The inspector's key for this submission: a repeat records nothing.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["inspector", "submission_key"],
                condition=~models.Q(submission_key=""),
                name="manufacturing_inspection_submission_once",
            )
        ]

    def __str__(self) -> str:
        return f"Inspection {self.pk} of {self.machine_id}"


class InspectionItem(models.Model):
    inspection = models.ForeignKey(Inspection, on_delete=models.CASCADE, related_name="items")
    text = models.CharField(max_length=255)
    passed = models.BooleanField(default=True)
    note = models.CharField(max_length=255, blank=True)
    work_order = models.ForeignKey(WorkOrder, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"{'pass' if self.passed else 'FAIL'}: {self.text}"


class MeterReading(models.Model):
    """A machine's running-hours meter, read on the floor or sent by a gateway (it only goes up)."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="meter_readings")
    hours = models.FloatField(help_text="Running hours on the meter.")
    read_at = models.DateTimeField(
        help_text="When the meter was read: a reading typed on a phone with no connection is sent later."
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submission_key = models.CharField(
        max_length=64, blank=True, help_text="The form's or API call's key: sent twice, recorded once."
    )

    class Meta:
        ordering = ["-read_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["recorded_by", "submission_key"],
                condition=~models.Q(submission_key=""),
                name="manufacturing_meter_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.machine.tag}: {self.hours:g} h at {self.read_at:%Y-%m-%d %H:%M}"


class MaintenancePlan(models.Model):
    """Preventive maintenance: a task done every N days or every N running hours, whichever comes
    first. When it falls due, a preventive work order is filed on its owner's authority; completing
    (or cancelling: that occurrence is skipped) that work order starts the next interval."""

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="maintenance_plans")
    title = models.CharField(max_length=255)
    instructions = models.TextField(blank=True)
    every_days = models.PositiveIntegerField(null=True, blank=True)
    every_hours = models.FloatField(null=True, blank=True, help_text="Running hours between services.")
    priority = models.PositiveSmallIntegerField(default=3)
    team = models.CharField(max_length=64, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Its work orders are filed on this person's authority (checked each time).",
    )
    last_done_at = models.DateTimeField(help_text="When the interval started: created, last done or skipped.")
    last_done_hours = models.FloatField(null=True, blank=True, help_text="The meter then.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["machine", "title"]

    def __str__(self) -> str:
        return f"{self.title} ({self.machine.tag})"


class ScanComparison(models.Model):
    """A 3-D scan of a component registered onto its reference scan (ICP): how far each point lies from
    the reference, and which lie beyond the tolerance (manufacturing.services.scans)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Registering"
        DONE = "done", "Registered"
        FAILED = "failed", "Registration failed"

    machine = models.ForeignKey(Machine, on_delete=models.CASCADE, related_name="scans")
    component = models.ForeignKey(Component, null=True, blank=True, on_delete=models.SET_NULL)
    # the registration runs on a worker (manufacturing.register_scan): a scan of a million points
    # takes tens of seconds, too long to hold a request
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True)
    scan = models.FileField(upload_to="manufacturing/scans/%Y/%m/")
    scan_name = models.CharField(max_length=255)
    # of the files: the same scan sent again is kept once, and a reference (a CAD model, often tens of
    # megabytes, sent with every scan of its part) is stored once per asset
    scan_sha256 = models.CharField(max_length=64, blank=True)
    reference = models.FileField(upload_to="manufacturing/scans/%Y/%m/")
    reference_name = models.CharField(max_length=255)
    reference_sha256 = models.CharField(max_length=64, blank=True)
    tolerance = models.FloatField(help_text="In the scans' length unit.")
    unit = models.CharField(max_length=8, default="mm")
    summary = models.JSONField(default=dict)
    deviation_map = models.JSONField(
        default=list, help_text="[u, v, deviation] of the registered points shown on the map."
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scanned_at = models.DateTimeField(
        default=timezone.now,
        help_text="When the component was scanned: the upload's time unless given (a scanner's archive "
        "is often sent later, and the wear rate is per day of the scans' own dates).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-scanned_at", "-pk"]
        indexes = [
            models.Index(fields=["machine", "scan_sha256"], name="manufacturing_scan_sha256"),
            models.Index(fields=["component", "scanned_at"], name="manufacturing_scan_scanned"),
        ]

    def __str__(self) -> str:
        return f"Scan {self.pk} of {self.machine.tag}"

    @property
    def uploaded_late(self) -> bool:
        """Sent more than ten minutes after it was scanned (worth saying where the scan is shown)."""
        return bool(self.created_at and self.scanned_at) and (
            (self.created_at - self.scanned_at).total_seconds() > 600
        )
