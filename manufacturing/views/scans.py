"""3-D scans on an asset's page: a component's scan and its reference uploaded and registered (ICP) on
a worker, and the deviation map with the points beyond tolerance."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from manufacturing import charts, selectors, services
from manufacturing.models import ScanComparison
from manufacturing.services.scans import UNITS, ScanRefused, scan_component
from manufacturing.services.scans import scan_upload as upload_scan
from manufacturing.views import posted_float, posted_time, request_actor
from ops.broker import broker_required_for_post


def _authorize_scan_upload(request: HttpRequest, pk: int) -> None:
    # "view" on the asset is what services.scan_upload decides: 404 (trailed) for anyone else
    selectors.machine_for(request.user, pk, actor=request_actor(request))


@require_POST
@login_required
# the registration runs on a worker: 503 page, nothing stored, while it is down (after the access check)
@broker_required_for_post(authorize=_authorize_scan_upload)
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
        comparison = upload_scan(
            actor=request.user,
            machine=machine,
            scan_name=scan.name,
            scan_data=scan.read(),
            reference_name=reference.name,
            reference_data=reference.read(),
            tolerance=tolerance,
            unit=request.POST.get("unit", "mm"),
            component=scan_component(machine, request.POST.get("component", "")),
            scanned_at=posted_time(request.POST.get("scanned_at", ""), "scanned", refused=ScanRefused),
        )
    except (ScanRefused, services.WorkOrderRefused) as refusal:
        messages.error(request, f"Scan not compared: {refusal}.")
        return redirect(back)
    if getattr(comparison, "replayed", False):
        messages.info(
            request,
            f"This scan was already sent with this reference and tolerance: scan {comparison.pk}, kept once.",
        )
    else:
        messages.success(
            request,
            f"Scan {comparison.pk} uploaded ({comparison.summary['points']:,} points): the worker is "
            "registering it onto its reference.",
        )
    return redirect("manufacturing:scan_detail", pk=comparison.pk)


@require_GET
@login_required
def scan_detail(request: HttpRequest, pk: int) -> HttpResponse:
    comparison = selectors.scan_for(request.user, pk, actor=request_actor(request))
    # the same component's scans, oldest first: is the wear growing, how fast? (access: the same asset's)
    history = selectors.scan_history(comparison)
    points, wear, wear_reaches_on = selectors.scan_wear(history, comparison)
    done = comparison.status == ScanComparison.Status.DONE
    return render(
        request,
        "manufacturing/scan_detail.html",
        {
            "scan": comparison,
            "machine": comparison.machine,
            "summary": comparison.summary,
            "map": charts.deviation_map(
                comparison.deviation_map, tolerance=comparison.tolerance, unit=comparison.unit
            )
            if done
            else "",
            # reload while the worker registers a scan sent in the last half hour (not for ever when
            # no worker runs: the page then says it is still registering)
            "registering": comparison.status == ScanComparison.Status.PENDING
            and comparison.created_at > timezone.now() - dt.timedelta(minutes=30),
            "units": UNITS,
            "history": history if len(history) > 1 else [],
            "wear": wear,
            "wear_reaches_on": wear_reaches_on,
            # from today, not from the latest scan (an archive's scans may all be months old)
            "wear_days_left": (wear_reaches_on - timezone.now()).total_seconds() / 86400
            if wear_reaches_on is not None
            else None,
            "wear_chart": charts.wear_chart(
                points, wear, tolerance=comparison.tolerance, unit=comparison.unit
            )
            if done
            else "",
            "work_orders": comparison.work_orders.only("pk", "title", "status") if done else [],
        },
    )
