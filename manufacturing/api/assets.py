"""An asset's data: vibration recordings, condition data, maintenance plans, meter readings."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from manufacturing import selectors, services
from manufacturing.api import MaintenanceRefusal, refused, request_actor
from manufacturing.models import ScanComparison, WorkOrder
from manufacturing.services.maintenance_plans import (
    MeterKeyReused,
    PlanRefused,
    meter_record,
    plan_create,
    plan_update,
)
from manufacturing.services.scans import UNITS as SCAN_UNITS
from manufacturing.services.scans import ScanRefused, scan_component, scan_upload
from ops.broker import require_broker
from portal.submissions import REPLAYED_HEADER
from restapi.fields import UploadField
from restapi.openapi import idempotency_key
from restapi.parsers import LimitedJSONParser as JSONParser  # size and depth limits as 400


class RecordingUploadInput(serializers.Serializer):
    machine = serializers.IntegerField()
    file = UploadField()
    sample_rate = serializers.FloatField(
        required=False,
        default=0,
        help_text="Samples per second; may be left out when a CSV has a time column.",
    )
    rpm = serializers.FloatField(
        required=False,
        default=0,
        help_text="Shaft speed; may be left out when a .mat file has an RPM variable.",
    )
    units = serializers.CharField(default="g", max_length=8)
    channel = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=64,
        help_text="The column (CSV name or number, .npy number) or .mat variable (or DE, FE, BA) of a file "
        "with several channels.",
    )
    recorded_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When it was measured (ISO 8601; without an offset, the site's time zone); left out, "
        "the time of the upload.",
    )


class RecordingUploadOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, done or failed")
    samples = serializers.IntegerField()
    url = serializers.CharField(help_text="GET it for the analysis once the worker has made it.")


class RecordingUploadApi(APIView):
    """Upload a vibration recording (.csv, .npy or MATLAB .mat); the analysis runs on the worker."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": RecordingUploadInput},
        responses={
            200: RecordingUploadOutput,
            201: RecordingUploadOutput,
            400: MaintenanceRefusal,
            404: MaintenanceRefusal,
        },
        operation_id="manufacturing_recordings_upload",
    )
    def post(self, request):
        data = RecordingUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(
            request.user, data.validated_data["machine"], actor=request_actor(request)
        )
        upload = data.validated_data["file"]
        # the analysis runs on a worker: 503 + Retry-After, nothing stored, while it is down; the
        # service's access check ("view" on the machine, 404 trailed) was machine_for's, above
        require_broker(authorize=lambda: None)
        try:
            recording = services.recording_upload(
                actor=request.user,
                machine=machine,
                name=upload.name,
                data=upload.read(),
                sample_rate=data.validated_data["sample_rate"],
                rpm=data.validated_data["rpm"],
                units=data.validated_data["units"],
                channel=data.validated_data["channel"],
                recorded_at=data.validated_data["recorded_at"],
            )
        except services.RecordingRefused as refusal:
            return refused(str(refusal))
        url = reverse("manufacturing_api:recording-detail", args=[recording.pk])
        response = Response(
            {"id": recording.pk, "status": recording.status, "samples": recording.sample_count, "url": url},
            status=status.HTTP_200_OK if recording.replayed else status.HTTP_201_CREATED,
        )
        if recording.replayed:  # the same file and settings were already uploaded: nothing new stored
            response[REPLAYED_HEADER] = "true"
        else:
            response["Location"] = url
        return response


class ConditionAppendInput(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text="Readings in cycle order: objects {unit, cycle, settings: [3 numbers], sensors: [21 numbers]} "
        "or lists of the 26 numbers of a C-MAPSS row. At most 10,000 per request.",
    )


class ConditionRowError(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based position in `rows`")
    error = serializers.CharField()


class ConditionRefusal(serializers.Serializer):
    detail = serializers.CharField()
    rows = ConditionRowError(many=True, required=False)


class ConditionAppendOutput(serializers.Serializer):
    rows = serializers.IntegerField()
    units = serializers.DictField(child=serializers.IntegerField(), help_text="each unit's last cycle now")
    prediction = serializers.CharField(help_text="'queued' when the asset's family has a RUL model")


class ConditionAppendApi(APIView):
    """Append new condition readings (C-MAPSS-style cycles) to an asset, all or nothing with a per-row
    report; once stored, the asset's remaining-life prediction is renewed on the worker (alerts follow)."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=ConditionAppendInput,
        responses={
            200: ConditionAppendOutput,
            201: ConditionAppendOutput,
            400: ConditionRefusal,
            404: MaintenanceRefusal,
        },
        operation_id="manufacturing_condition_append",
    )
    def post(self, request, pk):
        data = ConditionAppendInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        if services.rul_model_exists(machine):
            # the renewal runs on a worker: 503 + Retry-After, nothing stored, while it is down
            require_broker(authorize=lambda: None)
        try:
            result = services.condition_append(
                actor=request.user, machine=machine, rows=data.validated_data["rows"]
            )
        except services.ConditionRefused as refusal:
            return Response(
                {"detail": str(refusal), "rows": refusal.rows}, status=status.HTTP_400_BAD_REQUEST
            )
        if result.pop("replayed", False):  # the same batch again: already stored, nothing new
            response = Response(result, status=status.HTTP_200_OK)
            response[REPLAYED_HEADER] = "true"
            return response
        return Response(result, status=status.HTTP_201_CREATED)


class MaintenancePlanInput(serializers.Serializer):
    title = serializers.CharField(max_length=255)
    every_days = serializers.IntegerField(required=False, allow_null=True, default=None)
    every_hours = serializers.FloatField(required=False, allow_null=True, default=None)
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, default=WorkOrder.Priority.MEDIUM)
    team = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)


class MaintenancePlanOutput(serializers.Serializer):
    id = serializers.IntegerField(source="plan.pk")
    title = serializers.CharField(source="plan.title")
    every_days = serializers.IntegerField(source="plan.every_days", allow_null=True)
    every_hours = serializers.FloatField(source="plan.every_hours", allow_null=True)
    due_date = serializers.DateTimeField(source="due.date", allow_null=True)
    due_hours = serializers.FloatField(source="due.hours", allow_null=True)
    due_now = serializers.CharField(help_text="Why it is due now; empty when it is not.")
    open_work_order = serializers.IntegerField(source="open.pk", allow_null=True, default=None)
    owner = serializers.CharField(source="plan.owner.username", allow_null=True, default=None)
    owner_may_file = serializers.BooleanField(
        help_text="False when the owner may no longer file work orders on the site: the plan files nothing "
        "until someone of the site takes it over (PUT plans/<id>/)."
    )
    instructions = serializers.CharField(source="plan.instructions")
    priority = serializers.IntegerField(source="plan.priority")


def _plan_shown(plan) -> dict:
    """A plan as the list shows it, with when it falls due."""
    row = next(row for row in selectors.maintenance_plans_of(plan.machine) if row["plan"].pk == plan.pk)
    return MaintenancePlanOutput(row).data


class MaintenancePlanApi(APIView):
    """An asset's preventive maintenance plans: list them (with when each falls due) or add one."""

    parser_classes = [JSONParser]

    @extend_schema(responses=MaintenancePlanOutput(many=True), operation_id="manufacturing_plans_list")
    def get(self, request, pk):
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        return Response(MaintenancePlanOutput(selectors.maintenance_plans_of(machine), many=True).data)

    @extend_schema(
        request=MaintenancePlanInput,
        responses={201: MaintenancePlanOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_plans_create",
    )
    def post(self, request, pk):
        data = MaintenancePlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        try:
            plan = plan_create(actor=request.user, machine=machine, **data.validated_data)
        except PlanRefused as refusal:
            return refused(str(refusal))
        return Response(_plan_shown(plan), status=status.HTTP_201_CREATED)


class MaintenancePlanDetailApi(APIView):
    """Change a plan (every field, as when it was added) and take it over: its work orders are filed on
    the caller's authority from now on."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=MaintenancePlanInput,
        responses={200: MaintenancePlanOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_plans_update",
    )
    def put(self, request, pk):
        data = MaintenancePlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        plan = selectors.maintenance_plan_for(request.user, pk, actor=request_actor(request))
        try:
            plan = plan_update(actor=request.user, plan=plan, **data.validated_data)
        except PlanRefused as refusal:
            return refused(str(refusal))
        return Response(_plan_shown(plan))


class MeterReadingInput(serializers.Serializer):
    hours = serializers.FloatField(help_text="Running hours on the meter.")
    read_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the meter was read (ISO 8601; a reading collected offline is sent later); now if left out.",
    )


class MeterReadingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    hours = serializers.FloatField()
    read_at = serializers.DateTimeField()


class MeterReadingApi(APIView):
    """Record an asset's running hours; a plan the reading makes due files its work order at once."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=MeterReadingInput,
        responses={
            201: MeterReadingOutput,
            400: MaintenanceRefusal,
            404: MaintenanceRefusal,
            422: MaintenanceRefusal,
        },
        parameters=[
            idempotency_key(
                "reading",
                "the same hours, it returns the reading already recorded and records nothing",
                "other hours or another asset",
            )
        ],
        operation_id="manufacturing_meter_record",
    )
    def post(self, request, pk):
        data = MeterReadingInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        try:
            reading = meter_record(
                actor=request.user,
                machine=machine,
                hours=data.validated_data["hours"],
                read_at=data.validated_data["read_at"],
                submission_key=request.headers.get("Idempotency-Key", "").strip(),
            )
        except MeterKeyReused as refusal:
            return refused(str(refusal), status.HTTP_422_UNPROCESSABLE_ENTITY)
        except PlanRefused as refusal:
            return refused(str(refusal))
        response = Response(MeterReadingOutput(reading).data, status=status.HTTP_201_CREATED)
        if reading.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


class ScanCompareInput(serializers.Serializer):
    scan = UploadField(help_text="The component's scan: .ply or .xyz (x y z per point).")
    reference = UploadField(
        help_text="Its reference: a scan (.ply or .xyz), e.g. as built, or the CAD model as a mesh (.stl, .obj, "
        ".ply with faces), whose surface is sampled."
    )
    tolerance = serializers.FloatField(help_text="In the scans' unit; points further away are flagged.")
    unit = serializers.ChoiceField(choices=SCAN_UNITS, default="mm")
    component = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The asset's component scanned (its id)."
    )
    scanned_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the component was scanned (ISO 8601; without an offset, the site's time zone); left "
        "out, the time of the upload. The wear rate counts the days between the scans' own dates.",
    )


class ScanWearOutput(serializers.Serializer):
    """The component's wear from its scans: a straight line through each scan's largest deviation."""

    rate_per_month = serializers.FloatField(help_text="Growth of the largest deviation, scans' unit a month.")
    scans = serializers.IntegerField(
        help_text="Scans of the component in this scan's unit, the line's points."
    )
    span_days = serializers.FloatField(help_text="From the first of them to the latest.")
    beyond = serializers.BooleanField(help_text="The latest is beyond this scan's tolerance already.")
    reaches_on = serializers.DateTimeField(
        allow_null=True,
        help_text="When the line reaches the tolerance at that rate; null when beyond it or not growing.",
    )


class ScanOutput(serializers.Serializer):
    """What `_scan_body` returns (the schema of the scan answers)."""

    id = serializers.IntegerField()
    machine = serializers.IntegerField()
    component = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(
        choices=ScanComparison.Status.choices,
        help_text="pending while the worker registers the scan; done or failed after.",
    )
    error = serializers.CharField(help_text="Why the registration failed (status failed), else empty.")
    url = serializers.CharField(help_text="Where this scan's result is read (GET).")
    scan_name = serializers.CharField()
    reference_name = serializers.CharField()
    tolerance = serializers.FloatField()
    unit = serializers.CharField()
    points = serializers.IntegerField(help_text="Points in the scan; every one is measured.")
    scanned_at = serializers.DateTimeField(help_text="When the component was scanned.")
    created_at = serializers.DateTimeField(help_text="When the scan was sent.")
    # null until the scan is registered (status done)
    beyond_tolerance = serializers.IntegerField(allow_null=True)
    deviation_max = serializers.FloatField(allow_null=True)
    deviation_p95 = serializers.FloatField(allow_null=True)
    rmse = serializers.FloatField(allow_null=True, help_text="Of the registration, in the scans' unit.")
    converged = serializers.BooleanField(allow_null=True)
    rotation_deg = serializers.FloatField(
        allow_null=True, help_text="How far the scan was turned onto the reference, degrees."
    )
    wear = ScanWearOutput(
        allow_null=True,
        required=False,
        help_text="Read answers only: the component's wear rate from its registered scans (null with fewer "
        "than two a day apart).",
    )


REGISTERED = ("beyond_tolerance", "deviation_max", "deviation_p95", "rmse", "converged", "rotation_deg")


def _scan_wear(scan: ScanComparison) -> dict | None:
    """The wear trend of the scan's component (`selectors.scan_wear`), as the scan's page gives it."""
    _, wear, reaches = selectors.scan_wear(selectors.scan_history(scan), scan)
    if wear is None:
        return None
    return {
        "rate_per_month": round(wear.rate_per_month, 6),
        "scans": wear.scans,
        "span_days": round(wear.span_days, 3),
        "beyond": wear.beyond,
        "reaches_on": serializers.DateTimeField().to_representation(reaches) if reaches else None,
    }


def _scan_body(scan: ScanComparison) -> dict:
    done = scan.status == ScanComparison.Status.DONE
    return {
        "id": scan.pk,
        "machine": scan.machine_id,
        "component": scan.component_id,
        "status": scan.status,
        "error": scan.error,
        "url": reverse("manufacturing_api:scan-detail", args=[scan.pk]),
        "scan_name": scan.scan_name,
        "reference_name": scan.reference_name,
        "tolerance": scan.tolerance,
        "unit": scan.unit,
        "points": int(scan.summary.get("points", 0)),
        "scanned_at": serializers.DateTimeField().to_representation(scan.scanned_at),
        "created_at": serializers.DateTimeField().to_representation(scan.created_at),
        **{key: scan.summary.get(key) if done else None for key in REGISTERED},
    }


class ScanCompareApi(APIView):
    """Send a component's scan and its reference: both are read and checked now (400 with what to
    change), kept, and registered (ICP) on a worker; GET the returned `url` for the deviations and the
    points beyond tolerance."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": ScanCompareInput},
        responses={
            201: ScanOutput,
            200: ScanOutput,  # the same scan sent again (Idempotent-Replayed: true)
            400: MaintenanceRefusal,
            404: MaintenanceRefusal,
            503: MaintenanceRefusal,
        },
        operation_id="manufacturing_scans_compare",
    )
    def post(self, request, pk: int):
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        data = ScanCompareInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        # the registration runs on a worker: 503 + Retry-After, nothing stored, while it is down; the
        # service's access check ("view" on the machine, 404 trailed) was machine_for's, above
        require_broker(authorize=lambda: None)
        try:
            comparison = scan_upload(
                actor=request.user,
                machine=machine,
                scan_name=values["scan"].name,
                scan_data=values["scan"].read(),
                reference_name=values["reference"].name,
                reference_data=values["reference"].read(),
                tolerance=values["tolerance"],
                unit=values["unit"],
                component=scan_component(machine, values["component"]),
                scanned_at=values["scanned_at"],
            )
        except ScanRefused as refusal:
            return refused(str(refusal))
        body = _scan_body(comparison)
        if getattr(comparison, "replayed", False):  # the same files and settings sent again: kept once
            return Response(body, status=status.HTTP_200_OK, headers={REPLAYED_HEADER: "true"})
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class ScanDetailApi(APIView):
    """A scan's registration: pending, or its deviations and points beyond tolerance (or why it failed)."""

    @extend_schema(
        responses={200: ScanOutput, 404: MaintenanceRefusal}, operation_id="manufacturing_scans_read"
    )
    def get(self, request, pk: int):
        scan = selectors.scan_for(request.user, pk, actor=request_actor(request))
        wear = _scan_wear(scan) if scan.status == ScanComparison.Status.DONE else None
        return Response({**_scan_body(scan), "wear": wear})
