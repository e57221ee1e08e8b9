"""Maintenance portal pages (phone-first), mounted at /manufacturing/ (namespace "manufacturing").

Thin: parse the form, fetch through a selector (404 for what the user may not see, denial trailed),
call one service, show its refusal as a message."""

from __future__ import annotations

import datetime as dt
import math
from contextlib import contextmanager

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.enforcement import trail_denial
from access.errors import PolicyDenied
from access.web import policy_required
from audit.actors import actor_from_request
from manufacturing import charts, selectors, services
from manufacturing.models import FailureCode, InspectionTemplate, VibrationRecording, WorkOrder
from manufacturing.services.assistant import SuggestionRefused, assistant_suggest, suggestion_review
from manufacturing.services.inspections import (
    InspectionKeyReused,
    InspectionRefused,
    ItemResult,
    inspection_record,
)
from manufacturing.services.maintenance_plans import (
    PlanRefused,
    meter_record,
    plan_create,
    plan_retire,
    plan_update,
)
from manufacturing.services.work_orders import work_order_attach, work_order_update
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
WORK_ORDERS_PER_PAGE = 50
RECORDINGS_SHOWN = 10


@contextmanager
def _outcome_shown(
    request: HttpRequest, *, denied: str, success: str = "", refusals=(services.WorkOrderRefused,)
):
    """Run a service call; show its refusal, a policy denial or `success` as a message on the next page."""
    try:
        yield
    except refusals as refusal:
        messages.error(request, str(refusal))
    except PolicyDenied as denial:
        trail_denial(denial)  # the service's transaction rolled back with it
        messages.error(request, denied)
    else:
        if success:
            messages.success(request, success)


def _actor(request):

    return actor_from_request(request)


def _float(value: str, name: str) -> float | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise services.WorkOrderRefused(f"{name} must be a number, e.g. 1.5") from None
    if not math.isfinite(number):  # 'inf' and 'nan' parse; the API refuses them too
        raise services.WorkOrderRefused(f"{name} must be a finite number, e.g. 1.5")
    return number


def _date(value: str) -> dt.date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise services.WorkOrderRefused("due must be a date like 2026-12-31") from None


def _int(value: str, default: int) -> int:
    try:
        return int(value or default)
    except ValueError:
        raise services.WorkOrderRefused("priority must be 1, 2, 3 or 4") from None


@require_GET
@policy_required("view", "portal:manufacturing")
def asset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "manufacturing/asset_list.html",
        {
            "machines": selectors.machines_with_health(request.user),
            "alerts": selectors.alerts_visible_to(request.user)[:20],
            "work_orders": selectors.work_orders_visible_to(request.user, status=selectors.ACTIVE)[:50],
        },
    )


def _file_from_post(request, machine, alert=None):
    """File from a page's form. Its `submission` key (made when the form was shown, kept in the
    phone's draft: portal.drafts) makes a second send of the same form land on the work order
    already filed."""
    key = request.POST.get("submission", "").strip()
    try:
        work_order = services.work_order_file(
            actor=request.user,
            machine=machine,
            title=request.POST.get("title", ""),
            description=request.POST.get("description", ""),
            priority=_int(request.POST.get("priority"), WorkOrder.Priority.MEDIUM),
            due=_date(request.POST.get("due", "")),
            team=request.POST.get("team", "")[:64],
            alert=alert,
            submission_key=key,
        )
    except services.SubmissionKeyReused:
        spend(request, key)
        raise
    if work_order.replayed:
        messages.info(request, f"This form was already sent: work order {work_order.pk} was filed once.")
    else:
        messages.success(request, f"Work order {work_order.pk} filed.")
    confirm_sent(request, key)
    return work_order


@require_http_methods(["GET", "POST"])
@login_required
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    if request.method == "POST":
        alert = machine.alerts.filter(pk=request.POST.get("alert") or 0).first()
        with _outcome_shown(request, denied="You may not file work orders for this site."):
            work_order = _file_from_post(request, machine, alert)
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
            # asset -> recording -> alert -> work order, each a link on the page
            "recordings": machine.recordings.select_related("analysis", "uploaded_by").prefetch_related(
                "alert_set__work_orders"
            )[:RECORDINGS_SHOWN],
            "work_orders": machine.work_orders.all()[:20],
            "priorities": WorkOrder.Priority.choices,
            "submission": new_submission_key(),
            "units": VibrationRecording.Units.choices,
            "components": machine.components.select_related("bearing"),
            "plans": selectors.maintenance_plans_of(machine),
            "meter": machine.meter_readings.first(),
        },
    )


def _plan_fields(request: HttpRequest) -> dict:
    """A plan's fields as posted by the add and edit forms (the service checks them)."""
    return {
        "title": request.POST.get("title", ""),
        "every_days": request.POST.get("every_days", "").strip() or None,
        "every_hours": request.POST.get("every_hours", "").strip() or None,
        "instructions": request.POST.get("instructions", ""),
        "priority": _int(request.POST.get("priority"), WorkOrder.Priority.MEDIUM),
        "team": request.POST.get("team", "")[:64],
    }


@require_POST
@login_required
def maintenance_plan_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Add a preventive maintenance plan to an asset (every N days and/or N running hours)."""
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    with _outcome_shown(request, denied="You may not plan work for this site.", refusals=(PlanRefused,)):
        plan = plan_create(actor=request.user, machine=machine, **_plan_fields(request))
        messages.success(request, f"Plan added: {plan.title}.")
    return redirect(reverse("manufacturing:asset_detail", args=[machine.pk]) + "#maintenance")


@require_POST
@login_required
def maintenance_plan_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a plan and take it over (its work orders are filed on the editor's authority from now on)."""
    plan = selectors.maintenance_plan_for(request.user, pk, actor=_actor(request))
    taken_over = plan.owner_id != request.user.pk
    with _outcome_shown(
        request, denied="You may not change the plans of this site.", refusals=(PlanRefused,)
    ):
        plan = plan_update(actor=request.user, plan=plan, **_plan_fields(request))
        filed = "".join(f"; it is due: preventive work order {wo.pk} filed" for wo in plan.filed)
        yours = ", yours from now on (its work orders are filed on your authority)" if taken_over else ""
        messages.success(request, f"Plan saved: {plan.title}{yours}{filed}.")
    return redirect(reverse("manufacturing:asset_detail", args=[plan.machine_id]) + "#maintenance")


@require_POST
@login_required
def maintenance_plan_stop(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a preventive maintenance plan (its open work order, if any, stays)."""
    plan = selectors.maintenance_plan_for(request.user, pk, actor=_actor(request))
    with _outcome_shown(request, denied="You may not change the plans of this site."):
        plan_retire(actor=request.user, plan=plan)
        messages.success(request, f"Plan stopped: {plan.title}.")
    return redirect(reverse("manufacturing:asset_detail", args=[plan.machine_id]) + "#maintenance")


@require_POST
@login_required
def meter_reading_add(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the asset's running hours; a plan it makes due files its work order at once."""
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    with _outcome_shown(
        request, denied="You may not record readings for this asset.", refusals=(PlanRefused,)
    ):
        reading = meter_record(
            actor=request.user, machine=machine, hours=request.POST.get("hours", "").strip()
        )
        filed = "".join(f"; preventive work order {wo.pk} filed: {wo.title}" for wo in reading.filed)
        messages.success(request, f"Meter reading recorded: {reading.hours:g} h{filed}.")
    return redirect(reverse("manufacturing:asset_detail", args=[machine.pk]) + "#maintenance")


@require_GET
def offline_worker(request: HttpRequest) -> HttpResponse:
    """The service worker that keeps the maintenance pages opened on a phone for when it has no
    connection (scope /manufacturing/; `?user=` names whose pages it keeps). Nothing in it is secret."""
    from django.templatetags.static import static

    shell = [
        static(path)
        for path in (
            "portal/suite.css",
            "portal/suite.js",
            "portal/favicon.svg",
            "manufacturing/manufacturing.css",
        )
    ]
    response = render(
        request,
        "manufacturing/offline-worker.js",
        {
            "static_url": settings.STATIC_URL
            if settings.STATIC_URL.startswith("/")
            else "/" + settings.STATIC_URL,
            "shell": shell,
            "login_path": resolve_url(settings.LOGIN_URL),
        },
        content_type="text/javascript; charset=utf-8",
    )
    response["Cache-Control"] = "no-cache"  # a new version reaches the phones at their next page
    return response


@require_GET
@login_required
def asset_qr(request: HttpRequest, pk: int) -> HttpResponse:
    """An SVG QR code of the asset's page URL (print it as the asset's label)."""
    import qrcode
    import qrcode.image.svg

    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    url = request.build_absolute_uri(reverse("manufacturing:asset_detail", args=[machine.pk]))
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    return HttpResponse(image.to_string(encoding="unicode"), content_type="image/svg+xml")


@require_GET
@login_required
def asset_label(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    return render(request, "manufacturing/asset_label.html", {"machine": machine})


def _authorize_recording_upload(request: HttpRequest, pk: int) -> None:
    # "view" on the asset is what services.recording_upload decides: 404 (trailed) for anyone else
    selectors.machine_for(request.user, pk, actor=_actor(request))


@require_POST
@login_required
# the analysis runs on a worker: 503 page, nothing stored, while it is down (after the access check)
@broker_required_for_post(authorize=_authorize_recording_upload)
def recording_upload(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise services.RecordingRefused("choose a recording file (.csv, .npy or .mat)")
        sample_rate = _float(request.POST.get("sample_rate", ""), "sample rate")
        rpm = _float(request.POST.get("rpm", ""), "rpm")
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
        )
    except (services.RecordingRefused, services.WorkOrderRefused) as refusal:
        messages.error(request, str(refusal))
    else:
        if recording.replayed:
            messages.info(
                request,
                f"This file was already uploaded with these settings: recording {recording.pk}, kept once.",
            )
        else:
            messages.success(request, f"Recording {recording.pk} uploaded; the analysis runs on the worker.")
    return redirect("manufacturing:asset_detail", pk=machine.pk)


@require_http_methods(["GET", "POST"])
@policy_required("view", "portal:manufacturing")
def work_order_new(request: HttpRequest) -> HttpResponse:
    """File a work order from a phone: pick the asset (or arrive from an alert or a QR label)."""
    alert = (
        selectors.alert_for(request.user, request.GET["alert"], actor=_actor(request))
        if request.GET.get("alert")
        else None
    )
    machines = selectors.machines_visible_to(request.user)
    if request.method == "POST":
        machine = selectors.machine_for(request.user, request.POST.get("machine"), actor=_actor(request))
        if request.POST.get("alert"):
            alert = selectors.alert_for(request.user, request.POST["alert"], actor=_actor(request))
            alert = alert if alert.machine_id == machine.pk else None
        with _outcome_shown(request, denied="You may not file work orders for this site."):
            work_order = _file_from_post(request, machine, alert)
            return redirect("manufacturing:work_order_detail", pk=work_order.pk)
    return render(
        request,
        "manufacturing/work_order_new.html",
        {
            "machines": machines,
            "alert": alert,
            # an alert is covered by one work order at a time: the page links to it instead
            "covering": selectors.covering_work_order(alert) if alert else None,
            "selected": alert.machine_id if alert else request.GET.get("machine", ""),
            "priorities": WorkOrder.Priority.choices,
            "submission": new_submission_key(),
        },
    )


@require_GET
@policy_required("view", "portal:manufacturing")
def work_order_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", selectors.ACTIVE)
    status = status if status in {*WorkOrder.Status.values, selectors.ACTIVE} else ""
    search = request.GET.get("q", "").strip()[:200]
    queryset = selectors.work_orders_visible_to(request.user, status=status, search=search)
    if request.GET.get("mine"):
        queryset = queryset.filter(assignee=request.user)
    if request.GET.get("preventive"):
        queryset = queryset.filter(preventive=True)
    page = Paginator(queryset, WORK_ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    filters["status"] = status or "all"
    return render(
        request,
        "manufacturing/work_order_list.html",
        {
            "page": page,
            "work_orders": page.object_list,
            "status": status,
            "search": search,
            "statuses": WorkOrder.Status.choices,
            "filters": filters.urlencode(),
        },
    )


@require_GET
@login_required
def work_order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    suggestion = work_order.suggestions.first()
    reviewed = work_order.suggestions.exclude(verdict="pending").first()
    return render(
        request,
        "manufacturing/work_order_detail.html",
        {
            "work_order": work_order,
            # the enum's order: the usual next step first, "Cancelled" last (it was first, alphabetically)
            "next_statuses": [
                (value, label)
                for value, label in WorkOrder.Status.choices
                if value in WorkOrder.TRANSITIONS[work_order.status]
            ],
            "modes": selectors.failure_codes("mode"),
            "causes": selectors.failure_codes("cause"),
            "actions": selectors.failure_codes("action"),
            "events": work_order.events.select_related("actor"),
            "attachments": work_order.attachments.all(),
            "suggestion": suggestion,
            "preselected_mode": work_order.failure_mode or (reviewed.final_code if reviewed else ""),
            "priorities": WorkOrder.Priority.choices,
            "final": work_order.status in WorkOrder.TERMINAL,
        },
    )


@require_POST
@login_required
def work_order_transition(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    with _outcome_shown(request, denied="You may not change this work order."):
        moved = services.work_order_transition(
            actor=request.user,
            work_order=work_order,
            to_status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
            failure_mode=request.POST.get("failure_mode", ""),
            failure_cause=request.POST.get("failure_cause", ""),
            action_code=request.POST.get("action_code", ""),
            labour_hours=_float(request.POST.get("labour_hours", ""), "labour hours"),
            downtime_hours=_float(request.POST.get("downtime_hours", ""), "downtime hours"),
        )
        if moved.replayed:
            messages.info(
                request, f"Already {moved.get_status_display().lower()}: this form was sent before."
            )
        else:
            messages.success(request, "Work order updated.")
    return redirect("manufacturing:work_order_detail", pk=pk)


@require_POST
@login_required
def work_order_plan(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    with _outcome_shown(request, denied="You may not change this work order.", success="Planning saved."):
        work_order_update(
            actor=request.user,
            work_order=work_order,
            priority=_int(request.POST.get("priority"), work_order.priority),
            due=_date(request.POST.get("due", "")),
            team=request.POST.get("team"),
            assignee=request.POST.get("assignee"),
            labour_hours=_float(request.POST.get("labour_hours", ""), "labour hours"),
            downtime_hours=_float(request.POST.get("downtime_hours", ""), "downtime hours"),
        )
    return redirect("manufacturing:work_order_detail", pk=pk)


@require_POST
@login_required
def work_order_attachment_add(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    upload = request.FILES.get("file")
    with _outcome_shown(request, denied="You may not change this work order."):
        if upload is None:
            raise services.WorkOrderRefused("choose a photo or a PDF to attach")
        attachment = work_order_attach(
            actor=request.user, work_order=work_order, name=upload.name, data=upload.read()
        )
        if attachment.replayed:
            messages.info(request, f"{upload.name} is already attached (the same file): kept once.")
        else:
            messages.success(request, "Attachment added.")
    return redirect("manufacturing:work_order_detail", pk=pk)


@require_GET
@login_required
def attachment_download(request: HttpRequest, pk: int) -> FileResponse:
    attachment = selectors.attachment_for(request.user, pk, actor=_actor(request))
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["Content-Disposition"] = f'inline; filename="{attachment.file.name.rsplit("/", 1)[-1]}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@login_required
def work_order_suggest(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    with _outcome_shown(
        request, denied="You may not ask the assistant about this work order.", refusals=(SuggestionRefused,)
    ):
        assistant_suggest(actor=request.user, work_order=work_order, problem=request.POST.get("problem", ""))
    return redirect(reverse("manufacturing:work_order_detail", args=[pk]) + "#assistant")


@require_POST
@login_required
def suggestion_verdict(request: HttpRequest, pk: int) -> HttpResponse:
    suggestion = selectors.suggestion_for(request.user, pk, actor=_actor(request))
    code = (
        request.POST.get("code", "")
        if request.POST.get("verdict") == "correct"
        else suggestion.suggested_code
    )
    try:
        reviewed = suggestion_review(actor=request.user, suggestion=suggestion, code=code)
    except SuggestionRefused as refusal:
        messages.error(request, str(refusal))
    except PolicyDenied as denial:
        trail_denial(denial)
        messages.error(request, "You may not review this suggestion.")
    else:
        messages.success(
            request, f"Failure mode {reviewed.final_code} {reviewed.get_verdict_display().lower()}."
        )
    return redirect(
        reverse("manufacturing:work_order_detail", args=[suggestion.work_order_id]) + "#assistant"
    )


@require_GET
@login_required
def work_order_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The printable work order report (print from the browser; a print stylesheet hides the chrome)."""
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    names = {
        (kind, code): description
        for kind, code, description in FailureCode.objects.filter(
            code__in=[work_order.failure_mode, work_order.failure_cause, work_order.action_code]
        ).values_list("kind", "code", "description")
    }
    return render(
        request,
        "manufacturing/work_order_report.html",
        {
            "work_order": work_order,
            "events": work_order.events.select_related("actor"),
            "attachments": work_order.attachments.all(),
            "mode": names.get(("mode", work_order.failure_mode), ""),
            "cause": names.get(("cause", work_order.failure_cause), ""),
            "action": names.get(("action", work_order.action_code), ""),
            "suggestions": work_order.suggestions.exclude(verdict="pending"),
            "inspection_items": work_order.inspectionitem_set.select_related("inspection"),
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def inspection_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Walk a checklist on an asset; each failed item files a work order."""
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
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
