"""Server-rendered SVG charts for the asset pages (no JavaScript, no CDN): waveform, spectrum,
envelope spectrum with the bearing fault frequencies marked, RMS velocity trend with the ISO zone
limits, and condition sensor trends. Pure functions of numbers; escaping by Django's format_html."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from manufacturing.analysis.vibration import ISO_ZONE_LIMITS

# drawn in about the user units a phone shows them in (390 px less margins), so 12-unit text stays
# readable there (10 px) and on a desktop column (420 px and up)
WIDTH, HEIGHT = 420, 220
FONT = 12
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 52, 12, 14, 30
MAX_POINTS = 800
END_ANCHOR = mark_safe(' text-anchor="end"')
MARK_COLOURS = {"bpfo": "#c0392b", "bpfi": "#8e44ad", "bsf": "#d35400", "ftf": "#16a085", "1x": "#7f8c8d"}


def _nice(value: float) -> str:
    magnitude = abs(value)
    if magnitude == 0:
        return "0"
    if magnitude >= 1000:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.0f}" if value == int(value) else f"{value:.1f}"  # cycle 203, not 203.0
    if magnitude >= 0.01:
        return f"{value:.3g}"
    return f"{value:.1e}"


def _decimate(xs: Sequence[float], ys: Sequence[float], limit: int = MAX_POINTS) -> tuple[list, list]:
    """At most `limit` points; each bucket keeps its min and max so peaks survive."""
    n = len(xs)
    if n <= limit:
        return list(xs), list(ys)
    bucket = math.ceil(n / (limit // 2))
    out_x, out_y = [], []
    for start in range(0, n, bucket):
        chunk = range(start, min(start + bucket, n))
        low = min(chunk, key=lambda i: ys[i])
        high = max(chunk, key=lambda i: ys[i])
        for i in sorted({low, high}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def _label_rows(starts: Sequence[float], labels: Sequence[str], rows: int = 4) -> list[int]:
    """A row for each marker label (left to right): the first row where it clears the labels already
    placed there (width estimated from its characters), else the row whose last label ends first."""
    ends = [-math.inf] * rows
    placed = []
    for start, label in zip(starts, labels, strict=True):
        free = [row for row in range(rows) if ends[row] + 3 <= start]
        row = free[0] if free else min(range(rows), key=ends.__getitem__)
        ends[row] = start + 0.6 * FONT * len(label)
        placed.append(row)
    return placed


def _marker_lines(markers: Sequence[tuple[float, str]], sx, shown: tuple[float, float], bottom: float) -> str:
    """Labelled dashed vertical lines at the markers within `shown` (x0, x1), from the plot's top to
    `bottom`, their labels stacked in rows where they would overlap; coloured by what they mark."""
    inside = sorted(((x, label) for x, label in markers if shown[0] <= x <= shown[1]), key=lambda m: m[0])
    # a label that would run past the chart's right edge ends at its line instead
    ends_left = [sx(x) + 2 + 0.6 * FONT * len(label) > WIDTH - 2 for x, label in inside]
    starts = [
        sx(x) - 2 - 0.6 * FONT * len(label) if left else sx(x) + 2
        for (x, label), left in zip(inside, ends_left, strict=True)
    ]
    rows = _label_rows(starts, [label for _, label in inside])
    return format_html_join(
        "",
        '<g class="mark" data-mark="{}"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-dasharray="4 3"/>'
        '<text x="{}" y="{}" fill="{}"{}>{}</text></g>',
        (
            (
                label,
                f"{sx(x):.1f}",
                PAD_TOP,
                f"{sx(x):.1f}",
                bottom,
                MARK_COLOURS.get(label.split()[0].lower(), "#555"),
                f"{sx(x) - 2:.1f}" if left else f"{sx(x) + 2:.1f}",
                PAD_TOP + FONT + (FONT + 1) * row,
                MARK_COLOURS.get(label.split()[0].lower(), "#555"),
                END_ANCHOR if left else "",
                label,
            )
            for (x, label), row, left in zip(inside, rows, ends_left, strict=True)
        ),
    )


def line_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    testid: str,
    markers: Sequence[tuple[float, str]] = (),
    levels: Sequence[tuple[float, str]] = (),
    x_max: float | None = None,
    x_min: float | None = None,
    points: Sequence[tuple[float, float, str]] = (),
    band: Sequence[tuple[float, float, float]] = (),
    from_zero: bool = True,
    x_ends: tuple[str, str] | None = None,
    overlay: tuple[Sequence[float], Sequence[float]] | None = None,
) -> SafeString:
    """An SVG line chart; `markers` are labelled vertical lines (frequencies), `levels` horizontal
    ones (zone limits), `points` labelled dots (e.g. zone letters on a trend), `band` (x, low, high)
    a shaded interval around the line (e.g. a prediction's uncertainty). `from_zero` False fits the y
    axis to the data (a sensor's level: drawn from 0, a drift of 0.5% is a flat line). `x_ends` labels
    the x axis' two ends in words (dates) instead of numbers. `x_min` / `x_max` show that stretch of the
    x axis only (a zoom: the y axis fits what is shown). `overlay` (xs, ys) is a second series drawn in
    grey beneath the line (another recording's spectrum, for comparison)."""
    pairs = [
        (float(x), float(y))
        for x, y in zip(xs, ys, strict=False)
        if math.isfinite(x)
        and math.isfinite(y)
        and (x_max is None or x <= x_max)
        and (x_min is None or x >= x_min)
    ]
    if not pairs:
        return format_html('<p class="muted" data-testid="{}">{}: no data.</p>', testid, title)
    first_x, last_x = pairs[0][0], max(p[0] for p in pairs)  # the axis spans the data, not its decimation
    xs, ys = _decimate([p[0] for p in pairs], [p[1] for p in pairs])
    band = [
        (float(x), float(low), float(high))
        for x, low, high in band
        if all(map(math.isfinite, (x, low, high))) and (x_max is None or x <= x_max)
    ]
    x0 = min(first_x, min(xs)) if x_min is None else x_min
    x1 = last_x if x_max is None else x_max
    other = [
        (float(x), float(y))
        for x, y in zip(*(overlay or ((), ())), strict=False)
        if math.isfinite(x) and math.isfinite(y) and x0 <= x <= x1
    ]
    other_xs, other_ys = _decimate([p[0] for p in other], [p[1] for p in other])
    y0 = min(0.0 if from_zero else math.inf, min(ys), *other_ys, *(low for _, low, _ in band))
    y1 = max([max(ys), *other_ys, *(level for level, _ in levels), *(high for _, _, high in band)])
    if not from_zero:  # a margin of 5% of the range above and below the data
        margin = 0.05 * (y1 - y0)
        y0, y1 = y0 - margin, y1 + margin
    if x1 <= x0:
        x1 = x0 + 1
    if y1 <= y0:
        y1 = y0 + 1
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM

    def sx(x: float) -> float:
        return PAD_LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return PAD_TOP + plot_h - (y - y0) / (y1 - y0) * plot_h

    line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys, strict=True))
    compared = (
        format_html(
            '<polyline class="overlay" fill="none" stroke="#9aa0a6" stroke-width="1" points="{}"/>',
            " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(other_xs, other_ys, strict=True)),
        )
        if other_xs
        else ""
    )
    shaded = (
        format_html(
            '<polygon class="band" fill="#1f5fa8" fill-opacity="0.15" stroke="none" points="{}"/>',
            " ".join(
                [f"{sx(x):.1f},{sy(high):.1f}" for x, _, high in band]
                + [f"{sx(x):.1f},{sy(low):.1f}" for x, low, _ in reversed(band)]
            ),
        )
        if band
        else ""
    )
    marks = _marker_lines(markers, sx, (x0, x1), PAD_TOP + plot_h)
    level_lines = format_html_join(
        "",
        '<g class="level"><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#aaa" stroke-dasharray="2 2"/>'
        '<text x="{}" y="{}" fill="#777">{}</text></g>',
        (
            (
                PAD_LEFT,
                f"{sy(y):.1f}",
                PAD_LEFT + plot_w,
                f"{sy(y):.1f}",
                PAD_LEFT + plot_w - 60,
                f"{sy(y) - 2:.1f}",
                label,
            )
            for y, label in levels
        ),
    )
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="3"/><text x="{}" y="{}">{}</text>',
        (
            (f"{sx(x):.1f}", f"{sy(y):.1f}", f"{sx(x) + 3:.1f}", f"{sy(y) - 4:.1f}", label)
            for x, y, label in points
        ),
    )
    axes = format_html(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#333"/>'
        '<text x="{l}" y="{bl}">{x0}</text><text x="{r}" y="{bl}" text-anchor="end">{x1}</text>'
        '<text x="{mid}" y="{bl}" text-anchor="middle">{xl}</text>'
        '<text x="{yl}" y="{b}" text-anchor="end">{y0}</text><text x="{yl}" y="{tt}" text-anchor="end">{y1}</text>'
        '<text x="4" y="{ym}" transform="rotate(-90 10 {ym})">{ylab}</text>',
        l=PAD_LEFT,
        r=PAD_LEFT + plot_w,
        t=PAD_TOP,
        b=PAD_TOP + plot_h,
        bl=PAD_TOP + plot_h + FONT + 4,
        mid=PAD_LEFT + plot_w / 2,
        yl=PAD_LEFT - 4,
        tt=PAD_TOP + FONT - 2,
        ym=PAD_TOP + plot_h / 2,
        x0=x_ends[0] if x_ends else _nice(x0),
        x1=x_ends[1] if x_ends else _nice(x1),
        y0=_nice(y0),
        y1=_nice(y1),
        xl=x_label,
        ylab=y_label,
    )
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" data-testid="{}" font-size="{}" '
        'preserveAspectRatio="xMidYMid meet" style="max-width:100%;height:auto">'
        '{}{}{}{}{}<polyline fill="none" stroke="#1f5fa8" stroke-width="1" points="{}"/>{}</svg></figure>',
        title,
        WIDTH,
        HEIGHT,
        title,
        testid,
        FONT,
        axes,
        level_lines,
        marks,
        shaded,
        compared,
        line,
        dots,
    )


# --- the asset page's charts -------------------------------------------------------------------
def iso_zone_limits(machine) -> tuple[float, float, float]:
    """The ISO 10816-3 / 20816-3 default A/B, B/C, C/D in mm/s RMS for the machine's group and foundation."""
    return ISO_ZONE_LIMITS.get((machine.iso_group, machine.foundation), ISO_ZONE_LIMITS[("group2", "rigid")])


def zone_limits(machine) -> tuple[float, float, float]:
    """A/B, B/C, C/D in mm/s RMS: the machine's own, else the ISO 10816-3 / 20816-3 default."""
    own = machine.zone_limits or {}
    return tuple(
        float(own.get(key, value))
        for key, value in zip(("A/B", "B/C", "C/D"), iso_zone_limits(machine), strict=True)
    )


def fault_frequencies(bearing, rpm: float) -> dict[str, float]:
    """BPFO, BPFI, BSF, FTF in Hz from a BearingGeometry row and the shaft speed (standard kinematics)."""
    if bearing is None or not rpm:
        return {}
    shaft = rpm / 60.0
    ratio = (
        bearing.ball_diameter_mm
        / bearing.pitch_diameter_mm
        * math.cos(math.radians(bearing.contact_angle_deg))
    )
    n = bearing.ball_count
    return {
        "bpfo": n / 2 * shaft * (1 - ratio),
        "bpfi": n / 2 * shaft * (1 + ratio),
        "bsf": bearing.pitch_diameter_mm / (2 * bearing.ball_diameter_mm) * shaft * (1 - ratio**2),
        "ftf": shaft / 2 * (1 - ratio),
    }


def stored_series(result: dict, *names: str) -> tuple[list, list]:
    """(frequencies, amplitudes) stored in an analysis result under one of `names`, in any of the
    shapes {"freq"|"frequencies"|"f": [...], "amp"|"amplitude"|"amplitudes"|"a": [...]} or [[f], [a]]."""
    for name in names:
        value = result.get(name)
        if isinstance(value, dict):
            freq = next((value[k] for k in ("freq_hz", "freq", "frequencies", "f", "hz") if k in value), None)
            amp = next(
                (value[k] for k in ("amp", "amplitude", "amplitudes", "a", "values") if k in value), None
            )
            if freq is not None and amp is not None and len(freq) == len(amp):
                return list(freq), list(amp)
        elif isinstance(value, list | tuple) and len(value) == 2 and len(value[0]) == len(value[1]):
            return list(value[0]), list(value[1])
    return [], []


def _result_frequencies(result: dict) -> dict[str, float]:
    found = result.get("fault_frequencies") or result.get("defect_frequencies") or {}
    out = {}
    if isinstance(found, dict):
        for name, value in found.items():
            hz = value.get("hz", value.get("frequency")) if isinstance(value, dict) else value
            if isinstance(hz, int | float) and hz > 0:
                out[str(name).lower()] = float(hz)
    return out


def _signal(recording):
    from manufacturing.services.recordings import recording_signal

    try:
        return recording_signal(recording=recording)
    except Exception:  # a missing or unreadable file: the charts from the stored result still show
        return None


WAVEFORM_MS = 250.0  # the stretch of the waveform shown unless asked for another
SPECTRUM_HZ = 1000.0  # the top of the ISO 10816-3 band: the spectrum shown unless asked for another
MAX_MARKS = 12  # harmonic markers on one chart (labels stay readable on a phone)


def recording_frequencies(recording, result: dict) -> dict[str, float]:
    """The bearing fault frequencies of a recording: those its analysis used, else from its component's
    bearing and its speed."""
    frequencies = _result_frequencies(result)
    if not frequencies:
        bearing = recording.component.bearing if recording.component_id and recording.component else None
        frequencies = fault_frequencies(bearing, recording.rpm)
    return frequencies


def chart_ranges(recording, result: dict) -> dict[str, tuple[float, float]]:
    """The stretch each chart shows unless asked for another: the waveform's first 250 ms, the spectrum
    to 1000 Hz (the ISO band), the envelope spectrum to 2.5x the highest fault frequency."""
    frequencies = recording_frequencies(recording, result)
    rate = recording.sample_rate
    shaft = (result.get("measured_rpm") or recording.rpm) / 60.0
    top = max([*frequencies.values(), shaft]) if frequencies else shaft * 6
    return {
        "waveform": (0.0, WAVEFORM_MS),
        "spectrum": (0.0, min(rate / 2, SPECTRUM_HZ)),
        "envelope": (0.0, min(rate / 2, max(top * 2.5, 50.0))),
    }


def _orders(hz: float, low: float, high: float) -> range:
    """The harmonic orders of `hz` within [low, high]."""
    return range(max(1, math.ceil(low / hz)), int(high / hz) + 1) if hz > 0 else range(0)


def harmonic_marks(
    base: dict[str, float], low: float, high: float, most_each: int = 5
) -> list[tuple[float, str]]:
    """Markers at the harmonics of each frequency within [low, high] ("BPFO 3x", ...): a frequency with
    more than `most_each` of them there (the cage's 25th-28th in a 300-600 Hz view) is left unmarked,
    as its lines would hide the others; at most MAX_MARKS in all."""
    marks = []
    for name, hz in base.items():
        orders = _orders(hz, low, high)
        if 0 < len(orders) <= most_each:
            marks += [(hz * k, name.upper() + (f" {k}x" if k > 1 else "")) for k in orders]
    return sorted(marks)[:MAX_MARKS]


def spectra(recording, result: dict, signal, zoomed: set) -> tuple[tuple[list, list], tuple[list, list]]:
    """(frequencies, amplitudes) of the spectrum and of the envelope spectrum of a recording: those its
    analysis stored, or, for a chart in `zoomed`, computed again from the stored signal at full
    resolution (the stored ones are pooled: the spectrum to about 2,000 points, the envelope spectrum only
    to 4x BPFI)."""
    import numpy as np

    rate = recording.sample_rate
    freq, amp = stored_series(result, "spectrum", "fft", "amplitude_spectrum")
    if signal is not None and "spectrum" in zoomed:
        # as the analysis computed it (Hann window, amplitude scaling)
        x = signal - signal.mean()
        window = np.hanning(x.size)
        freq = np.fft.rfftfreq(x.size, 1 / rate).tolist()
        amp = (np.abs(np.fft.rfft(x * window)) * 2 / window.sum()).tolist()
    elif not freq and signal is not None:
        amp_full = np.abs(np.fft.rfft(signal * np.hanning(signal.size))) * 2 / signal.size
        freq, amp = np.fft.rfftfreq(signal.size, 1 / rate).tolist(), amp_full.tolist()
    env_freq, env_amp = stored_series(result, "envelope_spectrum", "envelope")
    band = (result.get("envelope") or {}).get("band_hz") if isinstance(result.get("envelope"), dict) else None
    if signal is not None and "envelope" in zoomed and band and len(band) == 2:
        # the analysis' envelope (the band spectral kurtosis chose), to half the sample rate
        from manufacturing.analysis.vibration import envelope_spectrum

        env_freq, env_amp = (
            a.tolist() for a in envelope_spectrum(signal, rate, float(band[0]), float(band[1]))
        )
    elif not env_freq and signal is not None:
        from scipy.signal import hilbert

        envelope = np.abs(hilbert(signal - signal.mean()))
        envelope -= envelope.mean()
        env_amp = (np.abs(np.fft.rfft(envelope * np.hanning(envelope.size))) * 2 / envelope.size).tolist()
        env_freq = np.fft.rfftfreq(envelope.size, 1 / rate).tolist()
    return (freq, amp), (env_freq, env_amp)


def recording_charts(analysis, machine, ranges: dict | None = None, baseline=None) -> dict[str, SafeString]:
    """Waveform, spectrum and envelope spectrum (fault frequencies marked) of an analysed recording.

    `ranges` may set the stretch a chart shows ("waveform": (from ms, to ms), "spectrum" / "envelope":
    (from Hz, to Hz)); the others show `chart_ranges`. Spectra as `spectra` gives them. `baseline`, another
    analysed recording, draws its spectra in grey beneath (a comparison with an earlier state)."""
    import numpy as np

    recording = analysis.recording
    result = analysis.result or {}
    rate = recording.sample_rate
    signal = _signal(recording)
    frequencies = recording_frequencies(recording, result)
    usual = chart_ranges(recording, result)
    shown_ranges = {**usual, **(ranges or {})}
    charts = {}
    if signal is not None:
        start_ms, end_ms = shown_ranges["waveform"]
        first = min(int(start_ms / 1000 * rate), max(signal.size - 1, 0))
        shown = signal[first : max(int(end_ms / 1000 * rate), first + 2)]
        times = (first + np.arange(shown.size)) / rate * 1000
        title = (
            f"Waveform, first {shown.size / rate * 1000:.0f} ms"
            if first == 0 and "waveform" not in (ranges or {})
            else f"Waveform, {times[0]:.0f}–{times[-1]:.0f} ms of {signal.size / rate * 1000:.0f}"
        )
        charts["waveform"] = line_chart(
            times.tolist(),
            shown.tolist(),
            title=title,
            x_label="ms",
            y_label=recording.units,
            testid="waveform",
        )
    zoomed = set(ranges or {})
    (freq, amp), (env_freq, env_amp) = spectra(recording, result, signal, zoomed)
    if baseline is not None:
        base_spectrum, base_envelope = spectra(
            baseline.recording, baseline.result or {}, _signal(baseline.recording), zoomed
        )
        compared = f" · grey: recording {baseline.recording_id}"
    else:
        base_spectrum = base_envelope = None
        compared = ""
    shaft = (result.get("measured_rpm") or recording.rpm) / 60.0  # the speed the analysis used
    low, high = shown_ranges["spectrum"]
    default = (low, high) == usual["spectrum"]
    charts["spectrum"] = line_chart(
        freq,
        amp,
        title=("Spectrum" if default else f"Spectrum, {low:g}–{high:g} Hz") + compared,
        x_label="Hz",
        y_label=recording.units,
        testid="spectrum",
        markers=shaft_marks(shaft, low, high, default),
        x_min=low or None,
        x_max=high,
        overlay=base_spectrum,
    )
    low, high = shown_ranges["envelope"]
    default = (low, high) == usual["envelope"]
    charts["envelope"] = line_chart(
        env_freq,
        env_amp,
        title=("Envelope spectrum" if default else f"Envelope spectrum, {low:g}–{high:g} Hz") + compared,
        x_label="Hz",
        y_label=recording.units,
        testid="envelope-spectrum",
        # the default view marks each fault frequency and its second harmonic, as it always has
        markers=[
            (hz * h, f"{name.upper()}" + (f" {h}x" if h > 1 else ""))
            for name, hz in frequencies.items()
            for h in (1, 2)
        ]
        if default
        else harmonic_marks(frequencies, low, high),
        x_min=low or None,
        x_max=high,
        overlay=base_envelope,
    )
    charts["fault_frequencies"] = {name.upper(): round(hz, 2) for name, hz in frequencies.items()}
    return charts


def shaft_marks(shaft: float, low: float, high: float, default: bool) -> list[tuple[float, str]]:
    """1x, 2x, 3x of the shaft speed; in a zoomed view the orders within it, none where more than
    MAX_MARKS fall in it (a resonance band thousands of Hz up: the lines would fill the chart)."""
    if default or shaft <= 0:
        return [(shaft * k, f"{k}x") for k in (1, 2, 3)]
    orders = _orders(shaft, low, high)
    return [(shaft * k, f"{k}x") for k in orders] if len(orders) <= MAX_MARKS else []


WATERFALL_ROW = 24  # user units between two traces of a waterfall
WATERFALL_LIFT = 3  # the highest peak shown rises this many rows above its trace's base line
WATERFALL_POINTS = 400  # per trace (each keeps its peaks: _decimate)


def waterfall_chart(
    traces: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    unit: str,
    testid: str,
    shown: tuple[float, float],
    markers: Sequence[tuple[float, str]] = (),
) -> SafeString:
    """Spectra of successive recordings stacked one above the other (a waterfall), the oldest at the top
    and the latest at the front, on the x axis' stretch `shown` (from, to). `traces` are (label, xs, ys),
    oldest first. Every trace is drawn to one amplitude scale (the scale bar at the top right), so a
    defect line that grows from one recording to the next grows on the chart (the caption names the
    height of the bar at the right); each trace hides what lies behind it, as on paper. `markers` are labelled vertical lines through all of them (fault frequencies)."""
    x0, x1 = shown
    if x1 <= x0:
        x1 = x0 + 1
    kept = []
    for label, xs, ys in traces:
        pairs = [
            (float(x), float(y))
            for x, y in zip(xs, ys, strict=False)
            if math.isfinite(x) and math.isfinite(y) and x0 <= x <= x1
        ]
        kept.append((label, *_decimate([p[0] for p in pairs], [p[1] for p in pairs], WATERFALL_POINTS)))
    if not any(xs for _, xs, _ in kept):
        return format_html(
            '<p class="muted" data-testid="{}">{}: no data in this stretch.</p>', testid, title
        )
    top = max(max(ys, default=0.0) for _, _, ys in kept) or 1.0
    pad_left = 96  # room for a trace's date
    labels = 4 * (FONT + 1)  # the markers' label rows, above the highest peak
    stacked = (len(kept) - 1) * WATERFALL_ROW
    # a few recordings get a chart of the usual height, many a taller one
    lift = max(WATERFALL_LIFT * WATERFALL_ROW, HEIGHT - PAD_TOP - labels - PAD_BOTTOM - stacked)
    bottom = PAD_TOP + labels + lift + stacked
    height = bottom + PAD_BOTTOM
    plot_w = WIDTH - pad_left - PAD_RIGHT

    def sx(x: float) -> float:
        return pad_left + (x - x0) / (x1 - x0) * plot_w

    drawn = []
    for row, (label, xs, ys) in enumerate(kept):
        base = PAD_TOP + labels + lift + row * WATERFALL_ROW
        latest = row == len(kept) - 1
        line = " ".join(
            f"{sx(x):.1f},{base - max(y, 0.0) / top * lift:.1f}" for x, y in zip(xs, ys, strict=True)
        )
        hidden = f"{sx(xs[0]):.1f},{base} {line} {sx(xs[-1]):.1f},{base}" if xs else ""
        drawn.append(
            format_html(
                '<g class="trace" data-trace="{}"><polygon fill="#fff" stroke="none" points="{}"/>'
                '<polyline fill="none" stroke="{}" stroke-width="{}" points="{}"/>'
                '<text x="{}" y="{}" text-anchor="end">{}</text></g>',
                label,
                hidden,
                "#1f5fa8" if latest else "#5b7fa8",
                "1.4" if latest else "0.8",
                line,
                pad_left - 4,
                base,
                label,
            )
        )
    axes = format_html(
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/>'
        '<text x="{l}" y="{bl}">{x0}</text><text x="{r}" y="{bl}" text-anchor="end">{x1}</text>'
        '<text x="{mid}" y="{bl}" text-anchor="middle">{xl}</text>'
        '<g class="scale" data-scale="{value}"><title>{value} {unit}</title>'
        '<line x1="{sr}" y1="{t}" x2="{sr}" y2="{lt}" stroke="#333" stroke-width="2"/></g>',
        l=pad_left,
        r=pad_left + plot_w,
        b=bottom,
        bl=bottom + FONT + 4,
        mid=pad_left + plot_w / 2,
        x0=_nice(x0),
        x1=_nice(x1),
        xl=x_label,
        sr=pad_left + plot_w + 2,
        t=PAD_TOP + labels,
        lt=PAD_TOP + labels + lift,
        value=_nice(top),
        unit=unit,
    )
    caption = f"{title} · the bar at the right: {_nice(top)} {unit}"
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" data-testid="{}" font-size="{}" '
        'preserveAspectRatio="xMidYMid meet" style="max-width:100%;height:auto">{}{}{}</svg></figure>',
        caption,
        WIDTH,
        height,
        caption,
        testid,
        FONT,
        format_html_join("", "{}", ((trace,) for trace in drawn)),
        _marker_lines(markers, sx, (x0, x1), bottom),
        axes,
    )


def trend_chart(trend: list, machine) -> SafeString:
    """RMS velocity of the recent recordings against the zone limits, over the time they were measured
    (days; a route walked monthly and a week of daily checks are spaced as they happened)."""
    if len(trend) < 1:
        return SafeString("")
    limits = zone_limits(machine)
    first, last = trend[0][0], trend[-1][0]
    days = [(when - first).total_seconds() / 86400 for when, _, _ in trend]
    span = days[-1] - days[0]
    stamp = "%Y-%m-%d %H:%M" if span < 2 else "%Y-%m-%d"
    return line_chart(
        days,
        [rms for _, rms, _ in trend],
        title="RMS velocity trend (10-1000 Hz)",
        x_label="measured" if len(trend) > 1 else "one recording so far",
        y_label="mm/s",
        testid="rms-trend",
        levels=list(zip(limits, ("A/B", "B/C", "C/D"), strict=True)),
        points=[(day, rms, zone) for day, (_, rms, zone) in zip(days, trend, strict=True)],
        x_ends=(
            timezone.localtime(first).strftime(stamp),
            timezone.localtime(last).strftime(stamp) if span > 0 else "",
        ),
    )


def rul_trend_chart(predictions: list, machine) -> SafeString:
    """A unit's remaining useful life as predicted at each of its cycles, with the 80% band, the
    machine's alert threshold and the latest model's replacement point."""
    if len(predictions) < 2:
        return SafeString("")
    point = predictions[-1].model.replacement_point
    levels = [(machine.rul_alert_threshold, "alert")] + ([(point, "replace")] if point is not None else [])
    return line_chart(
        [p.cycle for p in predictions],
        [p.rul for p in predictions],
        title=f"Remaining useful life of unit {predictions[-1].unit}, as predicted at each cycle",
        x_label="cycle",
        y_label="cycles",
        testid="rul-trend",
        levels=levels,
        band=[(p.cycle, p.lower, p.upper) for p in predictions],
    )


# C-MAPSS's 21 sensors (Saxena et al. 2008, Table 2), by their 1-based number: symbol and meaning
CMAPSS_SENSORS = {
    1: "T2, fan inlet temperature (°R)", 2: "T24, LPC outlet temperature (°R)",
    3: "T30, HPC outlet temperature (°R)", 4: "T50, LPT outlet temperature (°R)",
    5: "P2, fan inlet pressure (psia)", 6: "P15, bypass-duct pressure (psia)",
    7: "P30, HPC outlet pressure (psia)", 8: "Nf, fan speed (rpm)", 9: "Nc, core speed (rpm)",
    10: "epr, engine pressure ratio", 11: "Ps30, HPC outlet static pressure (psia)",
    12: "phi, fuel flow to Ps30 (pps/psi)", 13: "NRf, corrected fan speed (rpm)",
    14: "NRc, corrected core speed (rpm)", 15: "BPR, bypass ratio", 16: "farB, burner fuel-air ratio",
    17: "htBleed, bleed enthalpy", 18: "Nf_dmd, demanded fan speed (rpm)",
    19: "PCNfR_dmd, demanded corrected fan speed (rpm)", 20: "W31, HPT coolant bleed (lbm/s)",
    21: "W32, LPT coolant bleed (lbm/s)",
}  # fmt: skip


def condition_charts(condition: list, sensors: Sequence[int] = (1, 6, 10)) -> list[SafeString]:
    """Condition sensors (C-MAPSS numbering from 0: s2, s7, s11 by default) over cycles, from rows of
    (cycle, settings, sensors). A unit flown in several operating regimes (FD002/FD004-style: the settings
    fall on more than one point of the regime grid, `prognostics.condition_keys`) has each sensor shown
    as its deviation from that regime's mean over the unit, in that regime's standard deviations: raw,
    the regime changes from cycle to cycle would hide the wear trend."""
    if not condition:
        return []
    import numpy as np

    from manufacturing.analysis.prognostics import condition_keys

    cycles = [cycle for cycle, _, _ in condition]
    width = max(len(row) for _, _, row in condition)
    values = np.array([list(row) + [np.nan] * (width - len(row)) for _, _, row in condition], dtype=float)
    settings = [list(s)[:3] for _, s, _ in condition]
    regimes = None
    if all(len(s) == 3 for s in settings):
        keys = condition_keys(np.asarray(settings, dtype=float))
        if len(set(keys)) > 1:
            regimes = keys
    charts = []
    for index in sensors:
        column = values[:, index] if index < width else np.full(len(cycles), np.nan)
        title, label = f"Sensor {index + 1}", f"s{index + 1}"
        if width == len(CMAPSS_SENSORS):  # C-MAPSS-style readings: the sensor's name and unit
            title = f"Sensor {index + 1} · {CMAPSS_SENSORS[index + 1]}"
        if regimes is not None:
            column = column.copy()
            for key in set(regimes):
                rows = regimes == key
                spread = np.nanstd(column[rows])
                column[rows] = (column[rows] - np.nanmean(column[rows])) / (spread if spread > 1e-9 else 1.0)
            title = f"{title}, normalised per operating regime ({len(set(regimes))} regimes)"
            label = "standard deviations"
        charts.append(
            line_chart(
                cycles,
                column.tolist(),
                title=title,
                x_label="cycle",
                y_label=label,
                testid=f"sensor-{index + 1}",
                from_zero=False,
            )
        )
    return charts


WEAR_HORIZON = 2.0  # a projected crossing is drawn when it lies within this many times the scans' span


def wear_chart(points: Sequence[tuple], trend, *, tolerance: float, unit: str) -> SafeString:
    """A component's largest deviation scan by scan (`points`: (sent at, deviation), oldest first) against
    the tolerance, with the fitted wear line in grey and, when it reaches the tolerance within twice the
    span of the scans, the line carried on to that day and marked there."""
    if len(points) < 2 or trend is None:
        return SafeString("")
    first = points[0][0]
    days = [(when - first).total_seconds() / 86400 for when, _ in points]
    end = days[-1]
    reaches = trend.reaches_in_days
    projected = reaches is not None and reaches <= WEAR_HORIZON * max(trend.span_days, 1.0)
    if projected:
        end = days[-1] + reaches
    start_fit = trend.fitted_latest - trend.rate_per_day * days[-1]
    stamp = "%Y-%m-%d"
    return line_chart(
        days,
        [deviation for _, deviation in points],
        title=f"Largest deviation, scan by scan ({unit})",
        x_label="sent",
        y_label=unit,
        testid="wear-trend",
        levels=[(tolerance, "tolerance")],
        points=[(day, deviation, "") for day, (_, deviation) in zip(days, points, strict=True)],
        markers=[(end, "reaches tolerance")] if projected else (),
        x_max=max(end, days[-1]),
        x_ends=(
            timezone.localtime(first).strftime(stamp),
            timezone.localtime(first + dt.timedelta(days=end)).strftime(stamp),
        ),
        overlay=([0.0, end], [start_fit, start_fit + trend.rate_per_day * end]),
    )


# --- 3-D scans ------------------------------------------------------------------------------------
BEYOND_ATTRIBUTE = mark_safe(' data-beyond="true"')


def _deviation_colour(deviation: float, tolerance: float) -> str:
    """Green at no deviation through amber to red at the tolerance; beyond it, a darker red."""
    if deviation > tolerance:
        return "#7b0d0d"
    share = max(0.0, min(1.0, deviation / tolerance))
    red = int(46 + share * (214 - 46))
    green = int(160 - share * (160 - 96))
    return f"#{red:02x}{green:02x}{40:02x}"


def deviation_map(points: Sequence[Sequence[float]], *, tolerance: float, unit: str) -> SafeString:
    """The registered scan seen along the reference's thinnest axis, each point coloured by its
    deviation from the reference; points beyond the tolerance drawn larger, on top."""
    if not points:
        return format_html('<p class="muted">{}</p>', "No points to draw.")
    us, vs = [p[0] for p in points], [p[1] for p in points]
    u0, u1, v0, v1 = min(us), max(us), min(vs), max(vs)
    span = max(u1 - u0, v1 - v0) or 1.0
    size = 360
    scale = (size - 20) / span

    def at(u: float, v: float) -> tuple[str, str]:
        return f"{10 + (u - u0) * scale:.1f}", f"{size - 10 - (v - v0) * scale:.1f}"

    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="{}" fill="{}"{}/>',
        (
            (
                *at(u, v),
                "3" if d > tolerance else "1.6",
                _deviation_colour(d, tolerance),
                BEYOND_ATTRIBUTE if d > tolerance else "",
            )
            for u, v, d in points
        ),
    )
    beyond = sum(1 for p in points if p[2] > tolerance)
    title = f"Deviation from the reference ({unit}); {beyond} point(s) shown beyond {tolerance:g} {unit}"
    legend = format_html(
        '<p class="legend"><span style="color:#2ea028">■</span> 0 {unit} '
        '<span style="color:#d66028">■</span> {tol} {unit} <span style="color:#7b0d0d">●</span> beyond</p>',
        unit=unit,
        tol=_nice(tolerance),
    )
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" width="100%" role="img" aria-label="{}" data-testid="deviation-map" '
        'style="max-width:{}px;height:auto;background:#fafafa">{}</svg>{}</figure>',
        title,
        size,
        size,
        title,
        size,
        dots,
        legend,
    )
