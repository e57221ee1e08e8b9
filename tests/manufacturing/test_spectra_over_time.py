"""An asset's spectra over time (a waterfall): its recordings' envelope spectra stacked to one amplitude
scale, oldest at the top, the bearing's fault frequencies marked, in Hz or in orders of each recording's
own speed, and each recording's fault-line heights below. Real CWRU recordings through the real analysis;
a bad parameter is named without a 500; another site's engineer is refused."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from django.utils import timezone

from manufacturing import charts
from manufacturing.models import BearingGeometry, Component
from tests.support import cwru_recording

pytestmark = pytest.mark.django_db
RIG_RPM = 1796


@pytest.fixture
def bearing(settings, tmp_path) -> BearingGeometry:
    settings.MEDIA_ROOT = tmp_path
    return BearingGeometry.objects.create(
        designation="6205-2RS JEM", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )


@pytest.fixture
def drive_end(machine_a, bearing) -> Component:
    return Component.objects.create(machine=machine_a, name="DE bearing", bearing=bearing)


def _ago(days: float):
    return timezone.now() - dt.timedelta(days=days)


def _traces(page: str) -> list[tuple[str, list[tuple[float, float]]]]:
    """Each trace of the waterfall, top (oldest) first: its label and its line's points (user units)."""
    chart = page.split('data-testid="waterfall"')[1].split("</svg>")[0]
    return [
        (label, [tuple(map(float, pair.split(","))) for pair in points.split()])
        for label, points in re.findall(
            r'<g class="trace" data-trace="([^"]+)">.*?<polyline[^>]* points="([^"]*)"/>', chart
        )
    ]


def _marks(page: str) -> dict[str, float]:
    chart = page.split('data-testid="waterfall"')[1].split("</svg>")[0]
    return {label: float(x) for label, x in re.findall(r'data-mark="([^"]+)"><line x1="([\d.]+)"', chart)}


def _highest(points: list[tuple[float, float]], near: float, within: float) -> tuple[float, float]:
    """The point of the line drawn highest (smallest y) within `within` user units of x = `near`, and
    how far it rises above the line's base (its last point's y, at the axis end)."""
    x, y = min((p for p in points if abs(p[0] - near) <= within), key=lambda p: p[1])
    return x, max(p[1] for p in points) - y


def test_a_growing_defect_stands_out_over_the_months(client, engineer_a, machine_a, drive_end):
    """A healthy bearing two months ago and last month, the outer race cracked today (the shared CWRU
    recordings): three traces oldest first, BPFO marked, the latest's BPFO line far above the healthy
    ones' on the one scale, and the table's BPFO heights latest first."""
    healthy = [
        cwru_recording(engineer_a, machine_a, "normal_97", rpm=RIG_RPM, seconds=s, recorded_at=_ago(d))
        for s, d in ((2.0, 60), (2.5, 30))
    ]
    cracked = cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=RIG_RPM)
    client.force_login(engineer_a)
    asset = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert f'href="/manufacturing/assets/{machine_a.pk}/spectra/" data-testid="spectra-link"' in asset
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/spectra/").content.decode()
    traces = _traces(page)
    assert [label.split()[0] for label, _ in traces] == [
        timezone.localtime(r.recorded_at).strftime("%Y-%m-%d") for r in (*healthy, cracked)
    ]
    assert traces[-1][0].endswith(cracked.analysis.zone)
    marks = _marks(page)
    assert {"BPFO", "BPFO 2x", "BPFI", "BSF", "FTF"} <= set(marks)
    rises = [_highest(points, marks["BPFO"], 3)[1] for _, points in traces]
    assert rises[2] > 4 * max(rises[:2]), rises
    # one scale: the bar names the highest amplitude shown, the latest's BPFO line
    shown_top = max(
        amp
        for r in (*healthy, cracked)
        for f, amp in zip(*charts.stored_series(r.analysis.result, "envelope"), strict=True)
        if f <= 2.5 * max(r.analysis.result["fault_frequencies"].values())
    )
    assert re.search(r'data-scale="([^"]+)"', page).group(1) == charts._nice(shown_top)
    rows = page.split('data-testid="fault-lines"')[1].split("</table>")[0]
    order = [int(pk) for pk in re.findall(r'<tr data-recording="(\d+)">', rows)]
    assert order == [cracked.pk, healthy[1].pk, healthy[0].pk]
    bpfo_db = [
        cracked.analysis.result["fault_amplitudes"]["bpfo"]["harmonics"][0]["db"],
        healthy[0].analysis.result["fault_amplitudes"]["bpfo"]["harmonics"][0]["db"],
    ]
    assert bpfo_db[0] > bpfo_db[1] + 10
    assert f"{bpfo_db[0]:.0f}&nbsp;dB" in rows.split(f'data-recording="{cracked.pk}"')[1].split("</tr>")[0]


def test_at_another_speed_the_lines_stand_in_line_in_orders(client, engineer_a, machine_a, drive_end):
    """Last month's recording ran 5% faster (the same samples played at 12.6 kHz: every line 5% higher):
    in Hz its BPFO line stands apart from today's and the page says so; in orders of each recording's
    own speed both stand on the one BPFO marker."""
    faster = RIG_RPM * 1.05
    cwru_recording(
        engineer_a,
        machine_a,
        "outer_race_007_at6_130",
        rpm=faster,
        seconds=1.5,
        sample_rate=12000 * 1.05,
        recorded_at=_ago(30),
    )
    cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=RIG_RPM)
    client.force_login(engineer_a)
    url = f"/manufacturing/assets/{machine_a.pk}/spectra/"
    in_hz = html.unescape(client.get(url).content.decode())
    # the speeds the analyses measured from the shaft lines (given: 1796 and 1886)
    assert re.search(r"These recordings ran at 179\d–188\d rpm", in_hz)
    marker = _marks(in_hz)["BPFO"]
    (then, _), (now, _) = (_highest(points, marker, 12) for _, points in _traces(in_hz))
    assert abs(now - marker) < 1.5 and then - now > 3  # 5.4 Hz apart: over 3 user units here
    orders_url = re.search(r'href="([^"]+)" data-testid="orders-link"', in_hz).group(1)
    in_orders = client.get(url + orders_url).content.decode()
    assert "orders of the shaft speed" in in_orders and 'data-testid="speeds-differ"' not in in_orders
    marks = _marks(in_orders)
    assert set(marks) >= {"BPFO", "BPFI"}
    for _, points in _traces(in_orders):
        assert abs(_highest(points, marks["BPFO"], 6)[0] - marks["BPFO"]) < 1.5


def test_one_measuring_point_at_a_time(client, engineer_a, machine_a, drive_end, bearing):
    """A second bearing measured later: the page shows the latest's point unless asked for the other,
    and offers both."""
    fan_end = Component.objects.create(machine=machine_a, name="FE bearing", bearing=bearing)
    first = cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=RIG_RPM, recorded_at=_ago(2))
    second = cwru_recording(
        engineer_a, machine_a, "inner_race_007_105", rpm=1797, component=fan_end, recorded_at=_ago(1)
    )
    assert (first.component, second.component) == (drive_end, fan_end)
    client.force_login(engineer_a)
    url = f"/manufacturing/assets/{machine_a.pk}/spectra/"
    page = client.get(url).content.decode()
    assert re.findall(r'<tr data-recording="(\d+)">', page) == [str(second.pk)]
    assert f'<option value="{fan_end.pk}" selected>FE bearing' in page and "DE bearing</option>" in page
    page = client.get(url, {"point": drive_end.pk}).content.decode()
    assert re.findall(r'<tr data-recording="(\d+)">', page) == [str(first.pk)]


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"chart": "cepstrum"}, "Chart: one of envelope, spectrum"),
        ({"axis": "rpm"}, "Axis: hz or orders"),
        ({"count": "1"}, "Recordings: a whole number from 2 to 24"),
        ({"count": "many"}, "Recordings: a whole number from 2 to 24"),
        ({"point": "99999"}, "Point: not one of this asset's measuring points"),
        ({"envelope_from": "300", "envelope_to": "100"}, "Envelope spectra: 'to' must be above 'from'"),
        (
            {"chart": "spectrum", "spectrum_from": "x"},
            "Spectra: give the stretch to show as two numbers of Hz",
        ),
    ],
)
def test_a_bad_parameter_is_named_and_the_usual_view_shown(
    client, engineer_a, machine_a, drive_end, query, said
):
    cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=RIG_RPM)
    client.force_login(engineer_a)
    response = client.get(f"/manufacturing/assets/{machine_a.pk}/spectra/", query)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and said in page.split('data-testid="spectra-problems"')[1][:400]
    assert len(_traces(page)) == 1


def test_a_stretch_and_the_plain_spectra(client, engineer_a, machine_a, drive_end):
    """The spectra (not the envelope) from 0 to 300 Hz mark the shaft's harmonics within it; the envelope
    zoomed to 300-600 Hz marks the fault frequencies' harmonics there."""
    cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=RIG_RPM)
    client.force_login(engineer_a)
    url = f"/manufacturing/assets/{machine_a.pk}/spectra/"
    page = client.get(url, {"chart": "spectrum", "spectrum_from": "0", "spectrum_to": "300"}).content.decode()
    assert sorted(_marks(page), key=lambda m: int(m[:-1])) == [f"{k}x" for k in range(1, 11)]
    page = client.get(url, {"envelope_from": "300", "envelope_to": "600"}).content.decode()
    assert {"BPFO 3x", "BPFO 4x", "BPFO 5x"} <= set(_marks(page))


def test_no_recording_yet_and_another_sites_engineer(client, engineer_a, engineer_b, machine_a, drive_end):
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/spectra/").content.decode()
    assert 'data-testid="no-spectra"' in page and 'data-testid="waterfall"' not in page
    cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=RIG_RPM)
    client.force_login(engineer_b)
    assert client.get(f"/manufacturing/assets/{machine_a.pk}/spectra/").status_code == 404
