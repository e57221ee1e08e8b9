"""A vibration recording's own page: its analysis by the real pipeline (a CWRU outer-race recording),
its charts over the stretch asked for (the zoom is done on the server), bad stretches named without a
500, links from the asset page and the alert, and another site's engineer refused."""

from __future__ import annotations

import html
import re

import pytest

from manufacturing.models import Alert, BearingGeometry, Component, VibrationRecording
from tests.support import cwru_recording

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(settings, tmp_path, engineer_a, machine_a) -> VibrationRecording:
    """2 s of the CWRU drive-end outer-race recording (12 kHz, 1796 rpm), uploaded and analysed."""
    settings.MEDIA_ROOT = tmp_path
    bearing = BearingGeometry.objects.create(
        designation="6205-2RS JEM", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )
    Component.objects.create(machine=machine_a, name="DE bearing", bearing=bearing)
    return cwru_recording(engineer_a, machine_a, "outer_race_007_at6_130", rpm=1796)


def _marks(svg_page: str, testid: str) -> list[str]:
    chart = svg_page.split(f'data-testid="{testid}"')[1].split("</svg>")[0]
    return re.findall(r'data-mark="([^"]+)"', chart)


def _x_ends(svg_page: str, testid: str) -> tuple[str, str]:
    """The numbers at the two ends of a chart's x axis."""
    chart = svg_page.split(f'data-testid="{testid}"')[1].split("</svg>")[0]
    ends = re.findall(r'<text x="[\d.]+" y="[\d.]+"(?: text-anchor="end")?>([^<]+)</text>', chart)
    return ends[0], ends[1]


def test_the_page_shows_the_analysis_and_its_charts_as_on_the_asset_page(client, engineer_a, recording):
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/recordings/{recording.pk}/").content.decode()
    assert recording.analysis.fault == "outer_race"
    assert "Outer-race bearing defect" in page.split('data-testid="fault-call"')[1][:80]
    assert 'data-testid="evidence"' in page and "BPFO 107." in page
    assert "130.npy" in page and "12000 Hz, 1796 rpm" in page and "24,000 samples" in page
    # as usual: 250 ms of waveform, the spectrum to 1000 Hz, the envelope spectrum with BPFO and 2x marked
    assert "Waveform, first 250 ms" in page
    assert _x_ends(page, "spectrum") == ("0", "1000")
    assert {"BPFO", "BPFO 2x"} <= set(_marks(page, "envelope-spectrum"))
    assert 'data-testid="spectrum-usual"' not in page  # nothing zoomed


def test_each_chart_shows_the_stretch_asked_for(client, engineer_a, recording):
    client.force_login(engineer_a)
    url = f"/manufacturing/recordings/{recording.pk}/"
    page = client.get(
        url,
        {
            "spectrum_from": "2000",
            "spectrum_to": "4000",
            "envelope_from": "300",
            "envelope_to": "600",
            "waveform_from": "1000",
            "waveform_to": "1100",
        },
    ).content.decode()
    assert "Spectrum, 2000–4000 Hz" in page and _x_ends(page, "spectrum") == ("2000", "4000")
    # the zoomed envelope spectrum marks the fault frequencies' harmonics within it (BPFO 3x-5x), not
    # the cage's 26th-50th, which would hide them
    marks = _marks(page, "envelope-spectrum")
    assert {"BPFO 3x", "BPFO 4x", "BPFO 5x", "BPFI 2x", "BPFI 3x"} <= set(marks)
    assert "BPFO" not in marks and not any(m.startswith("FTF") for m in marks) and len(marks) <= 12
    assert "Waveform, 1000–1100 ms of 2000" in page and _x_ends(page, "waveform") == ("1000", "1100")
    # the shaft's 67th-133rd harmonics (1796 rpm: 29.9 Hz) would fill the resonance band: none marked;
    # zoomed to 0-300 Hz its 1x-10x are
    assert _marks(page, "spectrum") == []
    low = client.get(url, {"spectrum_from": "0", "spectrum_to": "300"}).content.decode()
    assert _marks(low, "spectrum") == [f"{k}x" for k in range(1, 11)]
    assert "Waveform, first 250 ms" in low  # the other charts as usual
    # each chart's form keeps the others' stretches; its links go back to usual or to the whole band
    spectrum_form = page.split('data-testid="spectrum-range"')[1].split("</form>")[0]
    assert 'name="envelope_from" value="300"' in spectrum_form and 'name="spectrum_from"' in spectrum_form
    assert "the whole band, to 6,000 Hz" in spectrum_form and 'data-testid="spectrum-usual"' in spectrum_form
    whole = re.search(r'href="([^"]+)" data-testid="spectrum-whole"', spectrum_form).group(1)
    page = client.get(url + whole.replace("&amp;", "&").split("#")[0]).content.decode()
    assert _x_ends(page, "spectrum") == ("0", "6000") and "Envelope spectrum, 300–600 Hz" in page
    # a stretch past the record's end or the band's top is shown up to it
    page = client.get(
        url, {"spectrum_from": "5000", "spectrum_to": "99999", "waveform_from": "1900", "waveform_to": "5000"}
    ).content.decode()
    assert _x_ends(page, "spectrum") == ("5000", "6000") and "Waveform, 1900–2000 ms of 2000" in page


@pytest.mark.parametrize(
    ("query", "said"),
    [
        (
            {"spectrum_from": "abc", "spectrum_to": "500"},
            "Spectrum: give the stretch to show as two numbers of Hz",
        ),
        (
            {"spectrum_from": "800", "spectrum_to": "200"},
            "Spectrum: 'to' must be above 'from', within 0 and 6000 Hz",
        ),
        ({"envelope_from": "nan"}, "Envelope spectrum: give the stretch"),
        (
            {"waveform_from": "inf", "waveform_to": ""},
            "Waveform: give the stretch to show as two numbers of ms",
        ),
        ({"waveform_from": "3000", "waveform_to": "4000"}, "within 0 and 2000 ms"),
    ],
)
def test_a_bad_stretch_is_named_and_the_chart_shown_as_usual(client, engineer_a, recording, query, said):
    client.force_login(engineer_a)
    response = client.get(f"/manufacturing/recordings/{recording.pk}/", query)
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and said in page.split('data-testid="range-problems"')[1][:300]
    assert _x_ends(page, "spectrum") == ("0", "1000") and "Waveform, first 250 ms" in page


def test_a_decimal_comma_is_a_number(client, engineer_a, recording):
    client.force_login(engineer_a)
    page = client.get(
        f"/manufacturing/recordings/{recording.pk}/", {"envelope_from": "0", "envelope_to": "107,5"}
    ).content.decode()
    assert "Envelope spectrum, 0–107.5 Hz" in page and "BPFO" in _marks(page, "envelope-spectrum")


def test_the_asset_page_and_the_alert_link_to_it(client, engineer_a, machine_a, recording):
    # the outer race called at the default (ISO) limits, zone A: the analysis raised a defect alert
    alert = Alert.objects.get(recording=recording)
    assert alert.kind == "defect" and recording.analysis.zone == "A"
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    link = f'href="/manufacturing/recordings/{recording.pk}/'
    assert page.count(link) == 4  # the analysis' source, the alert, the recordings list, the zoom link
    alerts = page.split('data-testid="alerts"')[1].split("</ul>")[0]
    assert link in alerts and alert.message in alerts
    assert link in page.split('data-testid="recordings"')[1].split("</ul>")[0]
    assert link in page.split('data-testid="zoom-link"')[0][-300:]


def test_another_sites_engineer_gets_404_and_a_pending_recording_says_so(
    client, engineer_a, engineer_b, machine_a, recording
):
    client.force_login(engineer_b)
    assert client.get(f"/manufacturing/recordings/{recording.pk}/").status_code == 404
    assert client.get("/manufacturing/recordings/999999/").status_code == 404
    pending = VibrationRecording.objects.create(
        machine=machine_a, sample_rate=12000, rpm=1796, status="pending"
    )
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/recordings/{pending.pk}/").content.decode()
    assert 'data-testid="recording-status"' in page and "analysing this recording" in page
    assert 'http-equiv="refresh"' in page
    VibrationRecording.objects.filter(pk=pending.pk).update(status="failed", error="rpm 0")
    page = client.get(f"/manufacturing/recordings/{pending.pk}/").content.decode()
    assert "The analysis failed: rpm 0" in page and 'http-equiv="refresh"' not in page


def _points(svg_page: str, testid: str) -> int:
    chart = svg_page.split(f'data-testid="{testid}"')[1].split("</svg>")[0]
    return len(chart.split('<polyline fill="none"')[1].split('points="')[1].split('"')[0].split())


def test_a_zoom_is_drawn_at_the_records_full_resolution(client, engineer_a, recording):
    """The stored spectra are pooled (the spectrum to 3 Hz bins, the envelope spectrum only to 4x BPFI,
    649 Hz here); a zoom is computed again from the stored signal: 0.5 Hz bins, to half the sample rate."""
    client.force_login(engineer_a)
    url = f"/manufacturing/recordings/{recording.pk}/"
    assert recording.analysis.result["envelope"]["freq_hz"][-1] < 700
    page = client.get(
        url, {"spectrum_from": "0", "spectrum_to": "300", "envelope_from": "700", "envelope_to": "1000"}
    )
    page = page.content.decode()
    assert _points(page, "spectrum") > 400  # 600 bins of 0.5 Hz; the stored spectrum has 100 there
    assert "no data" not in page.split('data-testid="envelope-spectrum"')[0][-200:]
    assert _points(page, "envelope-spectrum") > 400
    assert {"BPFO 7x", "BPFO 8x", "BPFO 9x"} <= set(_marks(page, "envelope-spectrum"))


def test_an_earlier_recording_is_drawn_beneath_for_comparison(
    client, engineer_a, engineer_b, machine_a, machine_b, recording
):
    """A month earlier the bearing was healthy (the CWRU normal recording): chosen in "Compare with", its
    spectra are drawn in grey beneath this one's, at the same stretch; the zoom forms keep the choice. A
    recording that is not another analysed one of this asset is named and left out."""
    import datetime as dt

    from django.utils import timezone

    month_ago = timezone.now() - dt.timedelta(days=30)
    healthy = cwru_recording(engineer_a, machine_a, "normal_97", rpm=1797, recorded_at=month_ago)
    client.force_login(engineer_a)
    url = f"/manufacturing/recordings/{recording.pk}/"
    page = client.get(url).content.decode()
    options = page.split('data-testid="compare"')[1].split("</select>")[0]
    assert f'value="{healthy.pk}"' in options and "no bearing defect" in options.lower()
    assert f'value="{recording.pk}"' not in options  # not itself
    assert 'class="overlay"' not in page

    page = client.get(
        url, {"compare": healthy.pk, "envelope_from": "50", "envelope_to": "400"}
    ).content.decode()
    assert f"recording {healthy.pk}" in page.split('data-testid="baseline"')[1][:200]
    for chart in ("spectrum", "envelope-spectrum"):
        svg = page.split(f'data-testid="{chart}"')[1].split("</svg>")[0]
        assert 'class="overlay"' in svg, chart
    assert f"grey: recording {healthy.pk}" in page
    spectrum_form = page.split('data-testid="spectrum-range"')[1].split("</form>")[0]
    assert (
        f'name="compare" value="{healthy.pk}"' in spectrum_form
        and 'name="envelope_from" value="50"' in spectrum_form
    )
    compare_form = page.split('data-testid="compare"')[1].split("</form>")[0]
    assert (
        'name="envelope_to" value="400"' in compare_form and f'value="{healthy.pk}" selected' in compare_form
    )

    elsewhere = cwru_recording(engineer_b, machine_b, "normal_97", rpm=1797)
    for asked in (str(elsewhere.pk), "abc", str(recording.pk)):
        page = html.unescape(client.get(url, {"compare": asked}).content.decode())
        assert "Compare: " in page and "is not one of this asset's other analysed recordings" in page
        assert 'class="overlay"' not in page
