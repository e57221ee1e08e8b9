"""The asset page's SVG charts read on a phone: text about 10 px at 342 px wide, marker labels that do
not overlap, and sensor levels drawn on an axis fitted to them (from 0, a wear drift is a flat line)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from manufacturing import charts

PHONE_CHART_PX = 390 - 2 * 24  # the page's margins at 390 px


def _texts(svg: str) -> list[tuple[float, float, str]]:
    return [
        (float(x), float(y), text)
        for x, y, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    ]


def test_chart_text_is_readable_at_a_phones_width():
    svg = charts.line_chart([0, 1, 2], [0, 1, 0], title="t", x_label="Hz", y_label="g", testid="t")
    width = float(re.search(r'viewBox="0 0 ([\d.]+) ', svg).group(1))
    font = float(re.search(r'<svg[^>]* font-size="([\d.]+)"', svg).group(1))
    assert font * PHONE_CHART_PX / width >= 9.5  # screen pixels


def test_fault_frequency_labels_close_together_do_not_overlap():
    """The CWRU 6205 at 1797 rpm: FTF, BSF and their harmonics fall within a few hertz of each other."""
    freqs = np.linspace(0, 500, 2000)
    markers = [(11.9, "FTF"), (23.9, "FTF 2x"), (70.6, "BSF"), (107.3, "BPFO"), (141.1, "BSF 2x"),
               (162.1, "BPFI"), (214.6, "BPFO 2x"), (324.2, "BPFI 2x"), (150.0, "BPFO 1x-FTF")]  # fmt: skip
    svg = charts.line_chart(freqs, np.abs(np.sin(freqs)), title="Envelope spectrum", x_label="Hz",
                            y_label="g", testid="env", markers=markers)  # fmt: skip
    marks = re.findall(r'<g class="mark" data-mark="([^"]+)">.*?<text x="([\d.]+)" y="([\d.]+)"', svg)
    assert len(marks) == len(markers)
    by_row: dict[float, list[tuple[float, float]]] = {}
    for label, x, y in marks:
        by_row.setdefault(float(y), []).append((float(x), float(x) + 0.6 * charts.FONT * len(label)))
    for spans in by_row.values():
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False)), spans


def test_a_sensor_level_is_drawn_on_an_axis_fitted_to_it():
    cycles = list(range(1, 201))
    level = [642.0 + 0.01 * c + 0.1 * np.sin(c) for c in cycles]  # a wear drift of 2 over 200 cycles
    svg = charts.line_chart(cycles, level, title="Sensor 2", x_label="cycle", y_label="s2",
                            testid="sensor-2", from_zero=False)  # fmt: skip
    labels = [text for _, _, text in _texts(svg)]
    assert "0" not in labels and any(label.startswith("64") for label in labels)
    points = re.search(r'<polyline fill="none"[^>]* points="([^"]+)"', svg).group(1).split()
    ys = [float(p.split(",")[1]) for p in points]
    plot_h = charts.HEIGHT - charts.PAD_TOP - charts.PAD_BOTTOM
    assert max(ys) - min(ys) > 0.8 * plot_h  # the drift fills the chart
    assert "203" not in labels and "200" in labels  # whole cycles read without a decimal
    # a spectrum or a trend against zone limits stays drawn from 0
    spectrum = charts.line_chart([0, 10], [5, 6], title="s", x_label="Hz", y_label="g", testid="s")
    assert "0" in [text for _, _, text in _texts(spectrum)]


def test_the_axis_spans_the_whole_recording_when_it_is_decimated():
    """A waveform of 3,000 samples is drawn from 800 points; its time axis still starts at 0."""
    t = np.arange(3000) / 12.0  # ms
    svg = charts.line_chart(t, np.sin(t * 7.0), title="w", x_label="ms", y_label="g", testid="w")
    labels = [text for _, _, text in _texts(svg)]
    assert labels[0] == "0" and labels[1] == "249.9"


def test_a_waterfall_draws_every_trace_to_one_scale_oldest_at_the_top():
    freqs = np.linspace(0, 500, 501)
    line = np.where(np.abs(freqs - 107) < 1, 1.0, 0.01)
    svg = charts.waterfall_chart(
        [("then", freqs, line), ("now", freqs, 2 * line)],
        title="t",
        x_label="Hz",
        unit="g",
        testid="w",
        shown=(0, 400),
        markers=[(107.0, "BPFO"), (450.0, "beyond")],
    )
    traces = re.findall(r'data-trace="([^"]+)">.*?<polyline[^>]* points="([^"]*)"', svg)
    assert [label for label, _ in traces] == ["then", "now"]
    ys = [[float(p.split(",")[1]) for p in points.split()] for _, points in traces]
    rises = [max(y) - min(y) for y in ys]
    assert rises[1] == pytest.approx(2 * rises[0], rel=0.02)  # one scale: twice the line, twice as high
    # the older trace's base line a row further up (its floor, 1% of its line, sits just above it)
    assert max(ys[1]) - max(ys[0]) == pytest.approx(charts.WATERFALL_ROW, abs=1)
    assert re.findall(r'data-mark="([^"]+)"', svg) == ["BPFO"]  # 450 Hz lies outside 0-400
    assert 'data-scale="2"' in svg
    empty = charts.waterfall_chart(
        [("now", [600.0], [1.0])], title="t", x_label="Hz", unit="g", testid="w", shown=(0, 400)
    )
    assert "no data in this stretch" in empty
