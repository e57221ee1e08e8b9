"""Maintenance portal pages (phone-first), mounted at /manufacturing/ (namespace "manufacturing")."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.errors import PolicyDenied
from access.web import policy_required
from manufacturing import selectors, services
from manufacturing.models import FailureCode, WorkOrder


def _actor(request):
    from audit.actors import actor_from_request

    return actor_from_request(request)


def _spectrum_points(analysis, key: str = "envelope_spectrum", width: int = 360, height: int = 120) -> str:
    """An inline SVG polyline of a spectrum in the analysis result ({"freq": [...], "amp": [...]})."""
    spectrum = (analysis.result or {}).get(key) if analysis else None
    if not isinstance(spectrum, dict):
        return ""
    freq, amp = spectrum.get("freq") or spectrum.get("frequencies") or [], spectrum.get("amp") or []
    if not freq or len(freq) != len(amp):
        return ""
    top, last = max(amp) or 1.0, freq[-1] or 1.0
    step = max(1, len(freq) // 400)
    return " ".join(
        f"{f / last * width:.1f},{height - a / top * height:.1f}"
        for f, a in zip(freq[::step], amp[::step], strict=True)
    )


@require_GET
@policy_required("view", "portal:manufacturing")
def asset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "manufacturing/asset_list.html",
        {
            "machines": selectors.machines_visible_to(request.user),
            "work_orders": selectors.work_orders_visible_to(request.user).exclude(
                status__in=[WorkOrder.Status.COMPLETE, WorkOrder.Status.CANCELLED]
            )[:50],
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def asset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=_actor(request))
    if request.method == "POST":
        alert = machine.alerts.filter(pk=request.POST.get("alert") or 0).first()
        try:
            work_order = services.work_order_file(
                actor=request.user,
                machine=machine,
                title=request.POST.get("title", ""),
                description=request.POST.get("description", ""),
                priority=int(request.POST.get("priority") or WorkOrder.Priority.MEDIUM),
                alert=alert,
            )
        except (services.WorkOrderRefused, ValueError) as refusal:
            messages.error(request, str(refusal))
        except PolicyDenied:
            messages.error(request, "You may not file work orders for this site.")
        else:
            return redirect("manufacturing:work_order_detail", pk=work_order.pk)
    recording = machine.recordings.select_related("analysis").filter(status="done").first()
    analysis = getattr(recording, "analysis", None) if recording else None
    return render(
        request,
        "manufacturing/asset_detail.html",
        {
            "machine": machine,
            "analysis": analysis,
            "envelope_points": _spectrum_points(analysis),
            "alerts": machine.alerts.filter(status="open")[:10],
            "work_orders": machine.work_orders.all()[:20],
            "priorities": WorkOrder.Priority.choices,
        },
    )


@require_GET
@login_required
def work_order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    return render(
        request,
        "manufacturing/work_order_detail.html",
        {
            "work_order": work_order,
            "next_statuses": sorted(WorkOrder.TRANSITIONS[work_order.status]),
            "modes": FailureCode.objects.filter(kind="mode"),
            "causes": FailureCode.objects.filter(kind="cause"),
            "actions": FailureCode.objects.filter(kind="action"),
            "events": work_order.events.all(),
        },
    )


@require_POST
@login_required
def work_order_transition(request: HttpRequest, pk: int) -> HttpResponse:
    work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
    try:
        services.work_order_transition(
            actor=request.user,
            work_order=work_order,
            to_status=request.POST.get("status", ""),
            note=request.POST.get("note", ""),
            failure_mode=request.POST.get("failure_mode", ""),
            failure_cause=request.POST.get("failure_cause", ""),
            action_code=request.POST.get("action_code", ""),
        )
    except services.WorkOrderRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("manufacturing:work_order_detail", pk=pk)
    except PolicyDenied:
        messages.error(request, "You may not change this work order.")
        return redirect("manufacturing:work_order_detail", pk=pk)
    messages.success(request, "Work order updated.")
    return redirect("manufacturing:work_order_detail", pk=pk)
