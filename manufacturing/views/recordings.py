"""A vibration recording's page: its analysis (zone, features, the fault call and its evidence) and its
charts, each shown over the stretch the engineer asks for (a zoom done on the server: no script, the
same on a phone and on paper)."""

from __future__ import annotations

import datetime as dt
import math
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from manufacturing import charts, selectors
from manufacturing.models import VibrationAnalysis, VibrationRecording
from manufacturing.views import request_actor

# chart -> (its name on the page, the unit of its x axis)
COMPARABLE = 30  # the asset's analysed recordings offered for a comparison, latest first
RANGES = {
    "waveform": ("Waveform", "ms"),
    "spectrum": ("Spectrum", "Hz"),
    "envelope": ("Envelope spectrum", "Hz"),
}


def _number(text: str, fallback: float) -> float:
    if not text:
        return fallback
    value = float(text.replace(",", "."))  # ValueError for anything else; a decimal comma is a number
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def asked_ranges(query, limits: dict[str, float], defaults: dict) -> tuple[dict, list[str]]:
    """The stretches asked for in the query (`spectrum_from` / `spectrum_to` and the like), each within
    0 and its limit (the record's length, half the sample rate), and what was wrong with any other."""
    ranges, problems = {}, []
    for chart, (name, unit) in RANGES.items():
        low_text = query.get(f"{chart}_from", "").strip()
        high_text = query.get(f"{chart}_to", "").strip()
        if not low_text and not high_text:
            continue
        try:
            low = _number(low_text, defaults[chart][0])
            high = _number(high_text, defaults[chart][1])
        except ValueError:
            problems.append(f"{name}: give the stretch to show as two numbers of {unit}, e.g. 0 and 500.")
            continue
        low, high = max(low, 0.0), min(high, limits[chart])
        if high <= low:
            problems.append(
                f"{name}: 'to' must be above 'from', within 0 and {limits[chart]:g} {unit}; shown as usual."
            )
            continue
        ranges[chart] = (low, high)
    return ranges, problems


@require_GET
@login_required
def recording_detail(request: HttpRequest, pk: int) -> HttpResponse:
    recording = selectors.recording_for(request.user, pk, actor=request_actor(request))
    machine = recording.machine
    try:
        analysis = recording.analysis
    except ObjectDoesNotExist:
        analysis = None
    context = {
        "recording": recording,
        "machine": machine,
        "analysis": analysis,
        "problems": [],
        # reload while the worker analyses a recording uploaded in the last 10 minutes (as the asset page)
        "analysing": recording.status == VibrationRecording.Status.PENDING
        and recording.created_at > timezone.now() - dt.timedelta(minutes=10),
    }
    if analysis is not None:
        result = analysis.result or {}
        usual = charts.chart_ranges(recording, result)
        rate = recording.sample_rate
        duration_ms = recording.sample_count / rate * 1000 if recording.sample_count else math.inf
        limits = {"waveform": duration_ms, "spectrum": rate / 2, "envelope": rate / 2}
        ranges, problems = asked_ranges(request.GET, limits, usual)
        # another analysed recording of the asset drawn in grey beneath (a baseline, last month's)
        earlier = list(
            VibrationAnalysis.objects.filter(recording__machine=machine)
            .exclude(recording=recording)
            .select_related("recording__component__bearing")
            .order_by("-recording__recorded_at", "-pk")[:COMPARABLE]
        )
        baseline = None
        asked = request.GET.get("compare", "").strip()
        if asked:
            baseline = next((a for a in earlier if str(a.recording_id) == asked), None)
            if baseline is None:
                problems.append(
                    f"Compare: {asked[:20]!r} is not one of this asset's other analysed recordings listed "
                    "below; shown without a comparison."
                )
        compare = [("compare", str(baseline.recording_id))] if baseline else []
        shown = {**usual, **ranges}
        views = []
        for chart, (name, unit) in RANGES.items():
            # the other charts' stretches and the comparison travel with this chart's zoom and its links
            kept = [
                (f"{other}_{end}", f"{value:g}")
                for other, stretch in ranges.items()
                if other != chart
                for end, value in zip(("from", "to"), stretch, strict=True)
            ] + compare
            whole = (0.0, limits[chart]) if math.isfinite(limits[chart]) else usual[chart]
            views.append(
                {
                    "chart": chart,
                    "name": name,
                    "unit": unit,
                    "shown": shown[chart],
                    "kept": kept,
                    "zoomed": chart in ranges,
                    "usual": f"?{urlencode(kept)}#{chart}",
                    "whole": "?"
                    + urlencode([*kept, (f"{chart}_from", "0"), (f"{chart}_to", f"{whole[1]:g}")])
                    + f"#{chart}",
                    "whole_label": f"the whole record ({whole[1]:,.0f} ms)"
                    if chart == "waveform"
                    else f"the whole band, to {whole[1]:,.0f} Hz",
                }
            )
        drawn = charts.recording_charts(analysis, machine, ranges or None, baseline=baseline)
        for view in views:
            view["svg"] = drawn.get(view["chart"], "")
        context.update(
            result=result,
            problems=problems,
            fault_frequencies=drawn["fault_frequencies"],
            views=views,
            earlier=earlier,
            baseline=baseline,
            # the comparison form keeps every chart's stretch
            ranges_kept=[
                (f"{chart}_{end}", f"{value:g}")
                for chart, stretch in ranges.items()
                for end, value in zip(("from", "to"), stretch, strict=True)
            ],
        )
    return render(request, "manufacturing/recording_detail.html", context)
