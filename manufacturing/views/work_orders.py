"""Work order pages: file, list, detail, status moves, planning, attachments, the assistant, the report."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.enforcement import trail_denial
from access.errors import PolicyDenied
from access.web import policy_required
from manufacturing import selectors, services
from manufacturing.models import FailureCode, WorkOrder
from manufacturing.services.assistant import SuggestionRefused, assistant_suggest, suggestion_review
from manufacturing.services.work_orders import work_order_attach, work_order_update
from manufacturing.views import (
    file_from_post,
    outcome_shown,
    posted_date,
    posted_float,
    posted_int,
    request_actor,
)
from portal.drafts import new_submission_key

WORK_ORDERS_PER_PAGE = 50


@require_http_methods(["GET", "POST"])
@policy_required("view", "portal:manufacturing")
def work_order_new(request: HttpRequest) -> HttpResponse:
    """File a work order from a phone: pick the asset (or arrive from an alert, a 3-D scan's page or a
    QR label)."""
    alert = (
        selectors.alert_for(request.user, request.GET["alert"], actor=request_actor(request))
        if request.GET.get("alert")
        else None
    )
    scan = (
        selectors.scan_for(request.user, request.GET["scan"], actor=request_actor(request))
        if request.GET.get("scan") and alert is None
        else None
    )
    machines = selectors.machines_visible_to(request.user)
    if request.method == "POST":
        machine = selectors.machine_for(
            request.user, request.POST.get("machine"), actor=request_actor(request)
        )
        if request.POST.get("alert"):
            alert = selectors.alert_for(request.user, request.POST["alert"], actor=request_actor(request))
            alert = alert if alert.machine_id == machine.pk else None
        if request.POST.get("scan"):
            scan = selectors.scan_for(request.user, request.POST["scan"], actor=request_actor(request))
            scan = scan if scan.machine_id == machine.pk else None  # another asset chosen: filed without
        with outcome_shown(request, denied="You may not file work orders for this site."):
            work_order = file_from_post(request, machine, alert, scan)
            return redirect("manufacturing:work_order_detail", pk=work_order.pk)
    return render(
        request,
        "manufacturing/work_order_new.html",
        {
            "machines": machines,
            "alert": alert,
            # an alert is covered by one work order at a time: the page links to it instead
            "covering": selectors.covering_work_order(alert) if alert else None,
            "selected": alert.machine_id
            if alert
            else scan.machine_id
            if scan
            else request.GET.get("machine", ""),
            "scan": scan if scan is not None and scan.status == scan.Status.DONE else None,
            "scan_title": _scan_title(scan) if scan is not None else "",
            "scan_description": _scan_description(scan) if scan is not None else "",
            "priorities": WorkOrder.Priority.choices,
            "submission": new_submission_key(),
        },
    )


def _scan_title(scan) -> str:
    what = scan.component.name if scan.component else scan.machine.tag
    beyond = scan.summary.get("beyond_tolerance", 0)
    return f"{what}: {beyond:,} points beyond {scan.tolerance:g} {scan.unit} (scan {scan.pk})"


def _scan_description(scan) -> str:
    summary = scan.summary
    return (
        f"3-D scan {scan.scan_name} against {scan.reference_name} ({scan.created_at:%Y-%m-%d}): "
        f"{summary.get('beyond_tolerance', 0):,} of {summary.get('points', 0):,} points beyond "
        f"{scan.tolerance:g} {scan.unit}, largest deviation {summary.get('deviation_max', 0):.2f} {scan.unit}."
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
    work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
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
    work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
    with outcome_shown(request, denied="You may not change this work order."):
        moved = services.work_order_transition(
            actor=request.user,
            work_order=work_order,
            to_status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
            failure_mode=request.POST.get("failure_mode", ""),
            failure_cause=request.POST.get("failure_cause", ""),
            action_code=request.POST.get("action_code", ""),
            labour_hours=posted_float(request.POST.get("labour_hours", ""), "labour hours"),
            downtime_hours=posted_float(request.POST.get("downtime_hours", ""), "downtime hours"),
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
    work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
    with outcome_shown(request, denied="You may not change this work order.", success="Planning saved."):
        work_order_update(
            actor=request.user,
            work_order=work_order,
            priority=posted_int(request.POST.get("priority"), work_order.priority),
            due=posted_date(request.POST.get("due", "")),
            team=request.POST.get("team"),
            assignee=request.POST.get("assignee"),
            labour_hours=posted_float(request.POST.get("labour_hours", ""), "labour hours"),
            downtime_hours=posted_float(request.POST.get("downtime_hours", ""), "downtime hours"),
        )
    return redirect("manufacturing:work_order_detail", pk=pk)


@require_POST
@login_required
def work_order_attachment_add(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
    upload = request.FILES.get("file")
    with outcome_shown(request, denied="You may not change this work order."):
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
    attachment = selectors.attachment_for(request.user, pk, actor=request_actor(request))
    response = FileResponse(attachment.file.open("rb"), content_type=attachment.content_type)
    response["Content-Disposition"] = f'inline; filename="{attachment.file.name.rsplit("/", 1)[-1]}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@login_required
def work_order_suggest(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
    with outcome_shown(
        request, denied="You may not ask the assistant about this work order.", refusals=(SuggestionRefused,)
    ):
        assistant_suggest(actor=request.user, work_order=work_order, problem=request.POST.get("problem", ""))
    return redirect(reverse("manufacturing:work_order_detail", args=[pk]) + "#assistant")


@require_POST
@login_required
def suggestion_verdict(request: HttpRequest, pk: int) -> HttpResponse:
    suggestion = selectors.suggestion_for(request.user, pk, actor=request_actor(request))
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
    work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
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
