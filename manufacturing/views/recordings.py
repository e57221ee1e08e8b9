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


def asked_ranges(
    query, limits: dict[str, float], defaults: dict, charts_named: dict | None = None
) -> tuple[dict, list[str]]:
    """The stretches asked for in the query (`spectrum_from` / `spectrum_to` and the like, for each chart
    of `charts_named`, chart -> (its name, its unit); RANGES unless given), each within 0 and its limit
    (the record's length, half the sample rate), and what was wrong with any other."""
    ranges, problems = {}, []
    for chart, (name, unit) in (charts_named or RANGES).items():
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


# the spectra a waterfall can stack: name on the page, the keys an analysis stores them under
WATERFALLS = {
    "envelope": ("Envelope spectra", ("envelope_spectrum", "envelope")),
    "spectrum": ("Spectra", ("spectrum", "fft", "amplitude_spectrum")),
}
AXES = {"hz": "Hz", "orders": "orders of the shaft speed"}
STACKED, MOST_STACKED = 8, 24  # recordings in a waterfall unless asked for another number; the most
DEFECTS = ("bpfo", "bpfi", "bsf", "ftf")


def _shaft_hz(analysis) -> float:
    """The shaft speed the analysis used (measured from the spectrum where it could be), in Hz."""
    return ((analysis.result or {}).get("measured_rpm") or analysis.recording.rpm) / 60.0


def _fault_line(analysis, name: str) -> dict | None:
    """The envelope line at a fault frequency (1x) as the analysis measured it: its height over the floor
    around it (dB) and its amplitude (three significant figures); None where it measured none."""
    found = ((analysis.result or {}).get("fault_amplitudes") or {}).get(name) or {}
    line = (found.get("harmonics") or [{}])[0]
    if not isinstance(line.get("amplitude"), int | float) or not isinstance(line.get("db"), int | float):
        return None
    return {"db": line["db"], "amplitude": f"{line['amplitude']:.3g}"}


def _count(text: str) -> int:
    value = int(text)
    if not 2 <= value <= MOST_STACKED:
        raise ValueError(text)
    return value


def _in_axis(query, kind: str, axis: str, shaft_hz: float):
    """The query with the stretch asked for in the x axis' unit: the form sends the stretch in the unit
    it showed (`stretch_axis`); switched between Hz and orders, it is converted at the latest recording's
    speed (the zoom stays on the same lines), not read as 400 orders where it said 400 Hz."""
    was = query.get("stretch_axis", axis)
    if was == axis or was not in AXES:
        return query
    factor = 1 / shaft_hz if axis == "orders" else shaft_hz
    query = query.copy()
    for key in (f"{kind}_from", f"{kind}_to"):
        text = query.get(key, "").strip()
        try:
            if text:
                query[key] = f"{_number(text, 0.0) * factor:.6g}"
        except ValueError:
            pass  # left as typed: asked_ranges names it
    return query


@require_GET
@login_required
def spectra_over_time(request: HttpRequest, pk: int) -> HttpResponse:
    """An asset's spectra or envelope spectra of its successive recordings at one measuring point, stacked
    (a waterfall) to one amplitude scale with the bearing's fault frequencies marked, in Hz or in orders
    of each recording's own shaft speed; below, each recording's line heights at the fault frequencies."""
    machine = selectors.machine_for(request.user, pk, actor=request_actor(request))
    query, problems = request.GET, []
    kind = query.get("chart", "envelope")
    if kind not in WATERFALLS:
        problems.append(f"Chart: one of {', '.join(WATERFALLS)}; the envelope spectra are shown.")
        kind = "envelope"
    axis = query.get("axis", "hz")
    if axis not in AXES:
        problems.append("Axis: hz or orders; shown in Hz.")
        axis = "hz"
    try:
        count = _count(query.get("count", "").strip() or str(STACKED))
    except ValueError:
        problems.append(
            f"Recordings: a whole number from 2 to {MOST_STACKED}; the latest {STACKED} are shown."
        )
        count = STACKED
    analysed = VibrationAnalysis.objects.filter(recording__machine=machine).select_related(
        "recording__component__bearing"
    )
    # the measuring points (components) with analysed recordings: one waterfall stacks one point's
    points = {
        str(component_id or "none"): name or "no component given"
        for component_id, name in analysed.order_by("recording__component__name")
        .values_list("recording__component_id", "recording__component__name")
        .distinct()
    }
    latest = analysed.order_by("-recording__recorded_at", "-pk").first()
    point = query.get("point", "").strip()
    if point and point not in points:
        problems.append(
            "Point: not one of this asset's measuring points with analysed recordings; the latest's is shown."
        )
        point = ""
    if not point and latest is not None:
        point = str(latest.recording.component_id or "none")
    context = {
        "machine": machine,
        "problems": problems,
        "kind": kind,
        "axis": axis,
        "count": count,
        "points": points,
        "point": point,
        "waterfalls": {key: name for key, (name, _) in WATERFALLS.items()},
        "axes": AXES,
        "most": MOST_STACKED,
        "stacked": [],
    }
    if latest is None:
        return render(request, "manufacturing/spectra_over_time.html", context)
    at_point = (
        analysed.filter(recording__component__isnull=True)
        if point == "none"
        else analysed.filter(recording__component_id=int(point))
    )
    stacked = list(at_point.order_by("-recording__recorded_at", "-pk")[:count])[::-1]  # oldest first
    newest = stacked[-1]
    shaft = _shaft_hz(newest)
    scale = shaft if axis == "orders" else 1.0  # Hz -> the x axis' unit
    frequencies = {
        name: hz / scale
        for name, hz in charts.recording_frequencies(newest.recording, newest.result or {}).items()
    }
    usual = charts.chart_ranges(newest.recording, newest.result or {})
    defaults = {kind: (usual[kind][0] / scale, usual[kind][1] / scale)}
    top = max(a.recording.sample_rate / 2 / (_shaft_hz(a) if axis == "orders" else 1.0) for a in stacked)
    query = _in_axis(query, kind, axis, shaft)
    ranges, range_problems = asked_ranges(
        query, {kind: top}, defaults, {kind: (WATERFALLS[kind][0], AXES[axis])}
    )
    problems += range_problems
    low, high = ranges.get(kind, defaults[kind])
    days = (stacked[-1].recording.recorded_at - stacked[0].recording.recorded_at).total_seconds() / 86400
    stamp = "%Y-%m-%d" if days >= 2 else "%m-%d %H:%M"
    traces = []
    for analysis in stacked:
        xs, ys = charts.stored_series(analysis.result or {}, *WATERFALLS[kind][1])
        divisor = _shaft_hz(analysis) if axis == "orders" else 1.0
        when = timezone.localtime(analysis.recording.recorded_at).strftime(stamp)
        traces.append((f"{when} {analysis.zone}", [x / divisor for x in xs], ys))
    if kind == "envelope":
        default = (low, high) == defaults[kind]
        markers = (
            [
                (hz * h, name.upper() + (f" {h}x" if h > 1 else ""))
                for name, hz in frequencies.items()
                for h in (1, 2)
            ]
            if default
            else charts.harmonic_marks(frequencies, low, high)
        )
    else:
        markers = charts.shaft_marks(shaft / scale, low, high, (low, high) == defaults[kind])
    speeds = [_shaft_hz(a) * 60 for a in stacked]
    unit = newest.recording.units
    context.update(
        stacked=stacked,
        chart=charts.waterfall_chart(
            traces,
            title=f"{WATERFALLS[kind][0]} of the latest {len(stacked)} recordings, oldest at the top"
            if len(stacked) > 1
            else f"{WATERFALLS[kind][0][:-1]} of the one recording so far: each next one stacks beneath",
            x_label=AXES[axis],
            unit=unit,
            testid="waterfall",
            shown=(low, high),
            markers=markers,
        ),
        shown=(low, high),
        unit=unit,
        other_units=sorted({a.recording.units for a in stacked} - {unit}),
        # a line that moves with the speed cannot be followed in Hz when the speed differs by over 2%
        speeds=(min(speeds), max(speeds)) if axis == "hz" and max(speeds) > 1.02 * min(speeds) else None,
        # the same recordings in orders (a stretch in Hz means nothing there: the usual one)
        orders_url="?"
        + urlencode(
            [(key, value) for key, value in query.items() if key in ("chart", "point", "count")]
            + [("axis", "orders")]
        ),
        rows=[
            {
                "analysis": analysis,
                "rpm": _shaft_hz(analysis) * 60,
                "band": ((analysis.result or {}).get("envelope") or {}).get("band_hz"),
                "lines": [_fault_line(analysis, name) for name in DEFECTS],
            }
            for analysis in reversed(stacked)
        ],
        defects=[name.upper() for name in DEFECTS],
    )
    return render(request, "manufacturing/spectra_over_time.html", context)
