"""3-D scans on an asset's page: a component's scan and its reference uploaded, registered (ICP), and
the deviation map with the points beyond tolerance."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from manufacturing import charts, selectors, services
from manufacturing.services.scans import UNITS, ScanRefused, scan_compare, scan_component
from manufacturing.views import posted_float, request_actor


@require_POST
@login_required
def scan_upload(request: HttpRequest, pk: int) -> HttpResponse:
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    scan, reference = request.FILES.get("scan"), request.FILES.get("reference")
    back = reverse("manufacturing:asset_detail", args=[machine.pk]) + "#scans"
    try:
        if scan is None or reference is None:
            raise ScanRefused("choose both files: the scan of the component and its reference scan")
        tolerance = posted_float(request.POST.get("tolerance", ""), "the tolerance")
        if tolerance is None:
            raise ScanRefused("enter a tolerance in the scans' unit, e.g. 0.5")
        comparison = scan_compare(
            actor=request.user,
            machine=machine,
            scan_name=scan.name,
            scan_data=scan.read(),
            reference_name=reference.name,
            reference_data=reference.read(),
            tolerance=tolerance,
            unit=request.POST.get("unit", "mm"),
            component=scan_component(machine, request.POST.get("component", "")),
        )
    except (ScanRefused, services.WorkOrderRefused) as refusal:
        messages.error(request, f"Scan not compared: {refusal}.")
        return redirect(back)
    beyond = comparison.summary["beyond_tolerance"]
    messages.success(
        request,
        f"Scan registered: {beyond:,} of {comparison.summary['points']:,} points beyond "
        f"{comparison.tolerance:g} {comparison.unit}.",
    )
    return redirect("manufacturing:scan_detail", pk=comparison.pk)


@require_GET
@login_required
def scan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = selectors.scan_for(request.user, pk, actor=request_actor(request))
    # the same component's scans, oldest first: is the wear growing? (access: the same asset's)
    history = (
        comparison.machine.scans.filter(component_id=comparison.component_id).order_by("created_at", "pk")
        if comparison.component_id
        else []
    )
    return render(
        request,
        "manufacturing/scan_detail.html",
        {
            "scan": comparison,
            "machine": comparison.machine,
            "summary": comparison.summary,
            "map": charts.deviation_map(
                comparison.deviation_map, tolerance=comparison.tolerance, unit=comparison.unit
            ),
            "units": UNITS,
            "history": history if len(history) > 1 else [],
        },
    )
