"""Asset pages: the list, an asset's page (condition, recordings, plans, work orders), its QR label,
recording uploads and inspections."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.enforcement import trail_denial
from access.errors import PolicyDenied
from access.web import policy_required
from manufacturing import charts, selectors, services
from manufacturing.models import Alert, InspectionTemplate, VibrationRecording, WorkOrder
from manufacturing.services.inspections import (
    InspectionKeyReused,
    InspectionRefused,
    ItemResult,
    inspection_record,
)
from manufacturing.services.scans import UNITS as SCAN_UNITS
from manufacturing.views import (
    file_from_post,
    outcome_shown,
    posted_float,
    posted_time,
    request_actor,
)
from ops.broker import broker_required_for_post
from portal.drafts import confirm_sent, new_submission_key, spend

DEFAULT_CHECKLIST = [
    "Guards and covers in place",
    "No oil or grease leaks",
    "Bearing housing not hot to the touch",
    "No unusual noise or vibration",
    "Belts / couplings in good condition",
    "Foundation bolts tight",
]
RECORDINGS_SHOWN = 10
SCANS_SHOWN = 10
KEPT_ON_THE_PHONE = dt.timedelta(minutes=10)  # a form sent this long after it was filled waited offline


@require_GET
@policy_required("view", "portal:manufacturing")
def asset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "manufacturing/asset_list.html",
        {
            "machines": selectors.machines_with_health(request.user),
            "alerts": selectors.alerts_visible_to(request.user)[:20],
            "alerts_in_hand": selectors.alerts_in_hand(
                selectors.alerts_visible_to(request.user, status=Alert.Status.ACKNOWLEDGED)
            )[:20],
            "work_orders": selectors.work_orders_visible_to(request.user, status=selectors.ACTIVE)[:50],
            "bad_actors": selectors.bad_actors(request.user),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    if request.method == "POST":
        alert = machine.alerts.filter(pk=request.POST.get("alert") or 0).first()
        with outcome_shown(request, denied="You may not file work orders for this site."):
            work_order = file_from_post(request, machine, alert)
            return redirect("manufacturing:work_order_detail", pk=work_order.pk)
    condition = selectors.machine_condition(machine)
    analysis = condition["analysis"]
    return render(
        request,
        "manufacturing/asset_detail.html",
        {
            "machine": machine,
            "analysis": analysis,
            "result": analysis.result if analysis else {},
            "charts": charts.recording_charts(analysis, machine) if analysis else {},
            "trend": charts.trend_chart(condition["trend"], machine),
            "condition_charts": charts.condition_charts(condition["condition"]),
            "rul_trend": charts.rul_trend_chart(condition["rul_trend"], machine),
            "condition_unit": condition["condition_unit"],
            "prediction": condition["prediction"],
            "pending": condition["pending"],
            # reload while the worker analyses a recording uploaded in the last 10 minutes
            "analysing": any(
                r.status == VibrationRecording.Status.PENDING
                and r.created_at > timezone.now() - dt.timedelta(minutes=10)
                for r in condition["pending"]
            ),
            "limits": charts.zone_limits(machine),
            "iso_limits": charts.iso_zone_limits(machine),
            "alerts": machine.alerts.filter(status="open").select_related("recording")[:10],
            "alerts_in_hand": selectors.alerts_in_hand(machine.alerts.all())[:10],
            # asset -> recording -> alert -> work order, each a link on the page
            "recordings": machine.recordings.select_related("analysis", "uploaded_by").prefetch_related(
                "alert_set__work_orders"
            )[:RECORDINGS_SHOWN],
            # the work in hand first, then the latest done (an imported history's thousands last)
            "work_orders": selectors.asset_work_orders(machine)[:20],
            "work_order_count": machine.work_orders.count(),
            **_reliability(request, machine),
            "scans": machine.scans.select_related("component").only(
                "pk",
                "scan_name",
                "summary",
                "status",
                "tolerance",
                "unit",
                "scanned_at",
                "created_at",
                "machine_id",
                "component__name",
            )[:SCANS_SHOWN],
            "scan_units": SCAN_UNITS,
            "priorities": WorkOrder.Priority.choices,
            "submission": new_submission_key(),
            "meter_submission": new_submission_key(),  # its own: sending it drops only its own draft
            "recording_submission": new_submission_key(),
            "units": VibrationRecording.Units.choices,
            "components": machine.components.select_related("bearing"),
            "plans": selectors.maintenance_plans_of(machine),
            "meter": machine.meter_readings.first(),
        },
    )


def _reliability(request: HttpRequest, machine) -> dict:
    """The asset's reliability over the period asked for (`?reliability=365|1095|all`). The usual 12
    months with no completed work order in them, where older ones exist (an imported history), shows
    the whole recorded history instead, and says so."""
    asked = request.GET.get("reliability", "")
    period = asked if asked in selectors.RELIABILITY_PERIODS else "365"
    found = selectors.machine_reliability(machine, period)
    fell_back = False
    if found is not None and not asked and not (found["figures"].failures or found["figures"].preventive):
        found, fell_back = selectors.machine_reliability(machine, "all"), True
    return {
        "reliability": found,
        "reliability_fell_back": fell_back,
        "reliability_periods": selectors.RELIABILITY_PERIODS,
        "reliability_refused": bool(asked) and asked not in selectors.RELIABILITY_PERIODS,
    }


@require_GET
@login_required
def asset_qr(request: HttpRequest, pk: int) -> HttpResponse:
    """An SVG QR code of the asset's page URL (print it as the asset's label)."""
    import qrcode
    import qrcode.image.svg

    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    url = request.build_absolute_uri(reverse("manufacturing:asset_detail", args=[machine.pk]))
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return HttpResponse(image.to_string(encoding="unicode"), content_type="image/svg+xml")


@require_GET
@login_required
def asset_label(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    return render(request, "manufacturing/asset_label.html", {"machine": machine})


def _kept_since(text: str) -> dt.datetime | None:
    """When a recording form was first sent (the phone fills `sent_at`), if that was over ten minutes
    ago: the form waited on the phone with no connection, and the recording was made then. None
    otherwise (sent just now, unreadable, or ahead of the server's clock): the upload's time."""
    try:
        moment = parse_datetime(text.strip()) if text.strip() else None
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        return None
    return moment if moment < timezone.now() - KEPT_ON_THE_PHONE else None


def _authorize_recording_upload(request: HttpRequest, pk: int) -> None:
    # "view" on the asset is what services.recording_upload decides: 404 (trailed) for anyone else
    selectors.machine_for(request.user, pk, actor=request_actor(request))


@require_POST
@login_required
# the analysis runs on a worker: 503 page, nothing stored, while it is down (after the access check)
@broker_required_for_post(authorize=_authorize_recording_upload)
def recording_upload(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise services.RecordingRefused("choose a recording file (.csv, .npy or .mat)")
        sample_rate = posted_float(request.POST.get("sample_rate", ""), "sample rate")
        rpm = posted_float(request.POST.get("rpm", ""), "rpm")
        recorded_at = posted_time(
            request.POST.get("recorded_at", ""), "measured", refused=services.RecordingRefused
        ) or _kept_since(request.POST.get("sent_at", ""))
        recording = services.recording_upload(
            actor=request.user,
            machine=machine,
            name=upload.name,
            data=upload.read(),
            sample_rate=sample_rate or 0,
            rpm=rpm or 0,
            units=request.POST.get("units", "g"),
            component=machine.components.filter(pk=request.POST.get("component") or 0).first(),
            channel=request.POST.get("channel", "")[:64],
            recorded_at=recorded_at,
        )
    except (services.RecordingRefused, services.WorkOrderRefused) as refusal:
        messages.error(request, str(refusal))
    else:
        confirm_sent(request, request.POST.get("submission", "").strip())  # the phone drops its draft
        if recording.replayed:
            messages.info(
                request,
                f"This file was already uploaded with these settings: recording {recording.pk}, kept once.",
            )
        else:
            messages.success(request, f"Recording {recording.pk} uploaded; the analysis runs on the worker.")
    return redirect("manufacturing:asset_detail", pk=machine.pk)


@require_http_methods(["GET", "POST"])
@login_required
def inspection_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Walk a checklist on an asset; each failed item files a work order."""
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    template_id = request.GET.get("template") or request.POST.get("template") or ""
    template = InspectionTemplate.objects.filter(pk=template_id).first() if template_id.isdigit() else None
    checklist = list(template.items) if template else DEFAULT_CHECKLIST
    if request.method == "POST":
        texts = request.POST.getlist("text")
        items = [
            ItemResult(
                text=text,
                passed=request.POST.get(f"result-{index}", "pass") != "fail",
                note=request.POST.get(f"note-{index}", ""),
            )
            for index, text in enumerate(texts)
        ]
        try:
            inspection = inspection_record(
                actor=request.user,
                machine=machine,
                items=items,
                template=template,
                submission_key=request.POST.get("submission", "").strip(),
            )
        except InspectionRefused as refusal:
            if isinstance(refusal, InspectionKeyReused):
                spend(request, request.POST.get("submission", "").strip())
            messages.error(request, str(refusal))
        except PolicyDenied as denial:
            trail_denial(denial)
            messages.error(request, "You may not record inspections for this site.")
        else:
            failed = inspection.items.filter(passed=False).count()
            confirm_sent(request, inspection.submission_key)
            if inspection.replayed:
                messages.info(
                    request, f"This form was already sent: inspection {inspection.pk} was recorded once."
                )
            else:
                messages.success(
                    request,
                    f"Inspection recorded: {len(items) - failed} passed, {failed} failed"
                    + (f", {failed} work order{'s' if failed != 1 else ''} filed." if failed else "."),
                )
            return redirect("manufacturing:asset_detail", pk=machine.pk)
    return render(
        request,
        "manufacturing/inspection_new.html",
        {
            "machine": machine,
            "checklist": checklist,
            "template": template,
            "templates": InspectionTemplate.objects.all(),
            "submission": new_submission_key(),
        },
    )
