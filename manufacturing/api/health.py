"""Reading an asset's health: the assets an engineer (or a plant system with their token) may see, each
with its vibration zone and remaining life at a glance; one asset's condition in full; one recording's
analysis, for a gateway that uploaded it and polls for the result."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from manufacturing import charts, selectors
from manufacturing.analysis.vibration import fault_label
from manufacturing.api import MaintenanceRefusal, refused, request_actor
from manufacturing.models import Alert, Machine, VibrationRecording
from manufacturing.services.maintenance_plans import latest_hours

_when = serializers.DateTimeField().to_representation


class VibrationAnalysisOutput(serializers.Serializer):
    zone = serializers.CharField(help_text="ISO 10816-3 / 20816-3 zone A-D.")
    rms_velocity = serializers.FloatField(help_text="mm/s RMS, 10-1000 Hz.")
    peak = serializers.FloatField()
    crest_factor = serializers.FloatField()
    kurtosis = serializers.FloatField()
    fault = serializers.CharField(help_text="none, outer_race, inner_race or ball.")
    fault_label = serializers.CharField(help_text="The fault call in words, as the pages show it.")
    fault_confidence = serializers.FloatField(allow_null=True)
    evidence = serializers.ListField(child=serializers.CharField())
    fault_frequencies = serializers.DictField(child=serializers.FloatField(), help_text="Hz, e.g. BPFO.")


class VibrationRecordingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    machine = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, done or failed")
    error = serializers.CharField(help_text="Why the analysis failed ('' otherwise).")
    url = serializers.CharField()
    page = serializers.CharField(help_text="The recording's page in the portal (charts, zoom).")
    original_name = serializers.CharField()
    sample_rate = serializers.FloatField()
    rpm = serializers.FloatField()
    units = serializers.CharField()
    samples = serializers.IntegerField()
    recorded_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()
    analysis = VibrationAnalysisOutput(allow_null=True, help_text="null until the worker has analysed it.")


def analysis_body(recording: VibrationRecording) -> dict | None:
    analysis = getattr(recording, "analysis", None) if recording.status == "done" else None
    if analysis is None:
        return None
    result = analysis.result or {}
    confidence = result.get("fault_confidence")
    return {
        "zone": analysis.zone,
        "rms_velocity": analysis.rms_velocity,
        "peak": analysis.peak,
        "crest_factor": analysis.crest_factor,
        "kurtosis": analysis.kurtosis,
        "fault": analysis.fault,
        "fault_label": fault_label(analysis.fault),
        "fault_confidence": float(confidence) if isinstance(confidence, int | float) else None,
        "evidence": [str(line) for line in result.get("evidence") or []],
        "fault_frequencies": {
            name.upper(): round(hz, 3) for name, hz in charts.recording_frequencies(recording, result).items()
        },
    }


def recording_body(recording: VibrationRecording) -> dict:
    return {
        "id": recording.pk,
        "machine": recording.machine_id,
        "status": recording.status,
        "error": recording.error,
        "url": reverse("manufacturing_api:recording-detail", args=[recording.pk]),
        "page": reverse("manufacturing:recording_detail", args=[recording.pk]),
        "original_name": recording.original_name,
        "sample_rate": recording.sample_rate,
        "rpm": recording.rpm,
        "units": recording.units,
        "samples": recording.sample_count,
        "recorded_at": _when(recording.recorded_at),
        "created_at": _when(recording.created_at),
        "analysis": analysis_body(recording),
    }


class RecordingDetailApi(APIView):
    """A vibration recording and, once the worker has analysed it, its zone, features and fault call with
    the evidence (poll the `url` an upload returns)."""

    @extend_schema(
        responses={200: VibrationRecordingOutput, 404: MaintenanceRefusal},
        operation_id="manufacturing_recordings_read",
    )
    def get(self, request, pk: int):
        return Response(
            recording_body(selectors.recording_for(request.user, pk, actor=request_actor(request)))
        )


class AssetRecordingsApi(generics.GenericAPIView):
    """An asset's vibration recordings, the latest measured first, each with its analysis once made: the
    zone and RMS velocity trend a plant historian reads (paginated: `limit`, `offset`)."""

    serializer_class = VibrationRecordingOutput

    @extend_schema(
        responses={200: VibrationRecordingOutput(many=True), 404: MaintenanceRefusal},
        operation_id="manufacturing_asset_recordings_list",
    )
    def get(self, request, pk: int):
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        recordings = machine.recordings.select_related("analysis", "component__bearing").order_by(
            "-recorded_at", "-pk"
        )
        page = self.paginate_queryset(recordings)
        return self.get_paginated_response([recording_body(recording) for recording in page])


class MaintenanceAssetSummaryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    tag = serializers.CharField()
    name = serializers.CharField()
    site = serializers.CharField()
    line = serializers.CharField()
    family = serializers.CharField()
    criticality = serializers.CharField()
    zone = serializers.CharField(
        allow_null=True, help_text="Of its latest analysed recording (by time measured)."
    )
    rul = serializers.FloatField(allow_null=True, help_text="Of its latest remaining-life prediction.")
    replace_now = serializers.BooleanField(
        help_text="That prediction is at or below its model's replacement point."
    )
    url = serializers.CharField()
    page = serializers.CharField()


def _summary(machine: Machine) -> dict:
    return {
        "id": machine.pk,
        "tag": machine.tag,
        "name": machine.name,
        "site": machine.site,
        "line": machine.line.name,
        "family": machine.family,
        "criticality": machine.criticality,
        "zone": machine.zone,
        "rul": machine.rul,
        "replace_now": machine.replace_now,
        "url": reverse("manufacturing_api:asset-detail", args=[machine.pk]),
        "page": reverse("manufacturing:asset_detail", args=[machine.pk]),
    }


class AssetListApi(APIView):
    """The assets you may see (your site's), each with its vibration zone and remaining life."""

    @extend_schema(
        responses={200: MaintenanceAssetSummaryOutput(many=True)}, operation_id="manufacturing_assets_list"
    )
    def get(self, request):
        return Response([_summary(machine) for machine in selectors.machines_with_health(request.user)])


class RulPredictionOutput(serializers.Serializer):
    unit = serializers.IntegerField()
    cycle = serializers.IntegerField(allow_null=True)
    rul = serializers.FloatField()
    lower = serializers.FloatField(help_text="The 80% band's lower end.")
    upper = serializers.FloatField()
    model = serializers.CharField(help_text="family v<version>")
    created_at = serializers.DateTimeField()


class MaintenanceAlertOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    severity = serializers.CharField()
    message = serializers.CharField()
    recording = serializers.IntegerField(allow_null=True)
    scan = serializers.IntegerField(allow_null=True, help_text="The 3-D scan whose wear raised it.")
    created_at = serializers.DateTimeField()


class ReliabilityOutput(serializers.Serializer):
    period = serializers.ChoiceField(
        choices=["365", "1095", "all"], help_text="Days up to now, or all history."
    )
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    failures = serializers.IntegerField(help_text="Corrective work orders completed in the period.")
    preventive = serializers.IntegerField()
    mtbf_hours = serializers.FloatField(allow_null=True, help_text="Operating hours per failure; null: none.")
    mttr_hours = serializers.FloatField(allow_null=True, help_text="Downtime hours per failure.")
    failures_without_downtime = serializers.IntegerField(
        help_text="Failures closed with no downtime recorded: MTTR reads low by them."
    )
    same_downtime = serializers.DictField(
        allow_null=True,
        help_text="{hours, failures} when at least 60% of 10 or more failures record one and the same "
        "downtime (a form's default, not a measured time: MTTR then says little); null otherwise.",
    )
    availability = serializers.FloatField(allow_null=True, help_text="1 - downtime / period.")
    operating_hours = serializers.FloatField()
    operating_from = serializers.ChoiceField(choices=["meter", "calendar"])
    failure_modes = serializers.ListField(
        child=serializers.DictField(), help_text="{code, description, count}, most frequent first."
    )


class MaintenanceAssetOutput(MaintenanceAssetSummaryOutput):
    iso_group = serializers.CharField()
    foundation = serializers.CharField()
    zone_limits = serializers.ListField(
        child=serializers.FloatField(), help_text="A/B, B/C, C/D in mm/s RMS (its own, else the ISO default)."
    )
    rul_alert_threshold = serializers.FloatField(allow_null=True)
    latest_recording = VibrationRecordingOutput(allow_null=True, help_text="Its latest analysed recording.")
    prediction = RulPredictionOutput(allow_null=True)
    running_hours = serializers.FloatField(allow_null=True, help_text="At its latest meter reading.")
    open_alerts = MaintenanceAlertOutput(many=True)
    reliability = ReliabilityOutput(
        allow_null=True,
        help_text="From its completed work orders over `?reliability=365|1095|all` (default 365); null "
        "when it has none.",
    )


class AssetDetailApi(APIView):
    """One asset's condition: zone limits in use, its latest analysed recording with the fault call and
    evidence, its latest remaining-life prediction with its band, the running hours and open alerts."""

    @extend_schema(
        responses={200: MaintenanceAssetOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_assets_read",
    )
    def get(self, request, pk: int):
        machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
        period = request.query_params.get("reliability", "365")
        if period not in selectors.RELIABILITY_PERIODS:
            return refused(
                f"reliability: give one of {', '.join(selectors.RELIABILITY_PERIODS)} (days up to now, or all)"
            )
        (health,) = selectors.machines_with_health(request.user, pk=machine.pk)
        condition = selectors.machine_condition(machine, recordings=1)
        analysis, prediction = condition["analysis"], condition["prediction"]
        return Response(
            {
                **_summary(health),
                "iso_group": machine.iso_group,
                "foundation": machine.foundation,
                "zone_limits": list(charts.zone_limits(machine)),
                "rul_alert_threshold": machine.rul_alert_threshold,
                "latest_recording": recording_body(analysis.recording) if analysis else None,
                "prediction": {
                    "unit": prediction.unit,
                    "cycle": prediction.cycle,
                    "rul": prediction.rul,
                    "lower": prediction.lower,
                    "upper": prediction.upper,
                    "model": f"{prediction.model.family} v{prediction.model.version}",
                    "created_at": _when(prediction.created_at),
                }
                if prediction
                else None,
                "running_hours": latest_hours(machine),
                "open_alerts": [
                    {
                        "id": alert.pk,
                        "kind": alert.kind,
                        "severity": alert.severity,
                        "message": alert.message,
                        "recording": alert.recording_id,
                        "scan": alert.scan_id,
                        "created_at": _when(alert.created_at),
                    }
                    for alert in machine.alerts.filter(status=Alert.Status.OPEN).order_by("-created_at")[:50]
                ],
                "reliability": _reliability(machine, period),
            }
        )


def _reliability(machine, period: str) -> dict | None:
    found = selectors.machine_reliability(machine, period)
    if found is None:
        return None
    figures = found["figures"]
    return {
        "period": period,
        "start": _when(figures.start),
        "end": _when(figures.end),
        "failures": figures.failures,
        "preventive": figures.preventive,
        "mtbf_hours": figures.mtbf_hours,
        "mttr_hours": figures.mttr_hours,
        "failures_without_downtime": figures.failures_without_downtime,
        "same_downtime": {"hours": figures.same_downtime[0], "failures": figures.same_downtime[1]}
        if figures.same_downtime
        else None,
        "availability": figures.availability,
        "operating_hours": figures.operating_hours,
        "operating_from": figures.operating_from,
        "failure_modes": [
            {"code": code, "description": description, "count": count}
            for code, description, count in found["modes"]
        ],
    }
