"""The recording reader shared by the upload and analyse_vibration: files with several channels, a
header and a time column, and MATLAB .mat files as the CWRU bearing data is distributed (the shared
drive-end outer-race recording written into one, with its fan-end channel and its RPM beside it)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from scipy.io import savemat

from manufacturing.analysis.waveform_files import read_waveform
from manufacturing.models import BearingGeometry, Component, VibrationRecording
from manufacturing.services.recordings import recording_analyse, recording_signal

BEARINGS = Path(settings.SHARED_DATA_DIR) / "bearings" / "cwru_de_0hp"
OUTER = np.load(BEARINGS / "cwru_de_0hp_outer_race_007_at6_130.npy")[:24000]  # 2 s at 12 kHz, 1796 rpm
NORMAL = np.load(BEARINGS / "cwru_de_0hp_normal_97.npy")[:24000]


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array))
    return buffer.getvalue()


def _cwru_mat(**extra) -> bytes:
    """A .mat laid out as CWRU's: column vectors X130_DE_time / X130_FE_time and a scalar X130RPM."""
    buffer = io.BytesIO()
    variables = {
        "X130_DE_time": OUTER[:, None],
        "X130_FE_time": NORMAL[:, None],
        "X130RPM": np.array([[1796]]),
    }
    savemat(buffer, variables | extra)
    return buffer.getvalue()


def test_npy_with_several_channels_needs_a_channel():
    both = np.column_stack([OUTER, NORMAL])
    with pytest.raises(ValueError, match=r"2 columns \(channels\); choose one with channel 0-1"):
        read_waveform("x.npy", _npy(both))
    wave = read_waveform("x.npy", _npy(both), "1")
    assert np.array_equal(wave.signal, NORMAL) and wave.channel == "1"
    with pytest.raises(ValueError, match="channel 2 does not exist"):
        read_waveform("x.npy", _npy(both), "2")
    assert np.array_equal(read_waveform("x.npy", _npy(OUTER[:, None])).signal, OUTER)  # one column
    with pytest.raises(ValueError, match="3-D array"):
        read_waveform("x.npy", _npy(np.zeros((4, 4, 4))))


def test_csv_header_and_time_column_give_the_channel_and_the_sample_rate():
    t = np.arange(4096) / 25600.0
    rows = "\n".join(
        f"{a:.8f},{b:.6f},{c:.6f}" for a, b, c in zip(t, OUTER[:4096], NORMAL[:4096], strict=True)
    )
    data = ("time,ax,ay\n" + rows).encode()
    wave = read_waveform("x.csv", data)
    assert wave.channel == "ax" and wave.sample_rate == pytest.approx(25600, rel=1e-4)
    assert np.allclose(wave.signal, OUTER[:4096], atol=1e-6)
    assert np.allclose(read_waveform("x.csv", data, "ay").signal, NORMAL[:4096], atol=1e-6)
    with pytest.raises(ValueError, match="no column 'az'; the columns are time, ax, ay"):
        read_waveform("x.csv", data, "az")
    with pytest.raises(ValueError, match="is the time axis"):
        read_waveform("x.csv", data, "time")
    # no header: a first column rising in equal steps is time, not vibration
    headerless = read_waveform("x.csv", rows.encode())
    assert headerless.channel == "1" and headerless.sample_rate == pytest.approx(25600, rel=1e-4)
    # one plain column, as before
    plain = read_waveform("x.csv", "\n".join(f"{v:.6f}" for v in OUTER[:4096]).encode())
    assert plain.channel == "" and plain.sample_rate is None
    with pytest.raises(ValueError, match="no samples after the header"):
        read_waveform("x.csv", b"time,ax\n")


@pytest.mark.parametrize(
    ("layout", "header", "row", "channel"),
    [
        # a European spreadsheet: semicolons between columns, decimal commas
        (
            "semicolon",
            "Zeit;Beschleunigung",
            lambda t, v: f"{t:.8f};{v:.6f}".replace(".", ","),
            "Beschleunigung",
        ),
        ("tab", "time\tax", lambda t, v: f"{t:.8f}\t{v:.6f}", "ax"),
        ("spaces", "t   ax", lambda t, v: f"{t:.8f}   {v:.6f}", "ax"),
    ],
)
def test_csv_in_other_layouts_reads_the_same_samples(layout, header, row, channel):
    """A data collector's or a spreadsheet's export, not only comma-separated: the same samples and the
    same sample rate (from the time column) whatever the separator and decimal mark."""
    t = np.arange(4096) / 25600.0
    data = (header + "\n" + "\n".join(row(a, b) for a, b in zip(t, OUTER[:4096], strict=True))).encode()
    wave = read_waveform(f"x.{'txt' if layout != 'semicolon' else 'csv'}", data)
    assert wave.channel == channel and wave.sample_rate == pytest.approx(25600, rel=1e-4)
    assert np.allclose(wave.signal, OUTER[:4096], atol=1e-6)


def test_one_named_column_with_decimal_commas():
    data = ("Wert\n" + "\n".join(f"{v:.6f}".replace(".", ",") for v in OUTER[:4096])).encode()
    wave = read_waveform("x.csv", data)
    assert np.allclose(wave.signal, OUTER[:4096], atol=1e-6) and wave.sample_rate is None


def test_one_unnamed_column_with_decimal_commas():
    """Without a header, "0,0123" could be two whole-number columns; "-0" and "0123" say it is not (it
    was read as two columns, and the whole parts, nearly all 0, analysed as the signal)."""
    data = "\n".join(f"{v:.6f}".replace(".", ",") for v in OUTER[:4096]).encode()
    wave = read_waveform("x.csv", data)
    assert np.allclose(wave.signal, OUTER[:4096], atol=1e-6) and wave.channel == ""
    # two real columns of whole numbers (an index and counts) stay two columns
    counts = "\n".join(f"{i},{int(v * 1000) + 2000}" for i, v in enumerate(OUTER[:4096])).encode()
    wave = read_waveform("x.csv", counts)  # the first column rises evenly: the time axis
    assert np.array_equal(wave.signal, [int(v * 1000) + 2000 for v in OUTER[:4096]])


def test_a_file_named_by_its_time_is_read_by_its_content():
    """The IMS/NASA bearing files: four tab-separated channels, no header, named by their time
    (2004.02.12.10.32.39). Read as text, the channel chosen by number; a .npy or .mat without its ending
    by its header; a binary file of another kind refused with what is accepted."""
    columns = np.column_stack([OUTER[:4096], NORMAL[:4096], -OUTER[:4096], NORMAL[:4096] * 2])
    ims = "\n".join("\t".join(f"{v:.3f}" for v in row) for row in columns).encode()
    wave = read_waveform("2004.02.12.10.32.39", ims, "2")
    assert wave.fmt == "csv" and np.allclose(wave.signal, -OUTER[:4096], atol=1e-3)
    assert np.allclose(read_waveform("2004.02.12.10.32.39", ims).signal, OUTER[:4096], atol=1e-3)
    assert read_waveform("recording", _npy(OUTER[:4096])).fmt == "npy"
    with pytest.raises(ValueError, match="upload a .csv .a column of samples., a .npy array or a MATLAB"):
        read_waveform("take.wav", b"RIFF\x24\x08\x00\x00WAVEfmt " + bytes(2048))


def test_mat_files_as_cwru_distributes_them():
    wave = read_waveform("130.mat", _cwru_mat())
    assert wave.fmt == "mat" and wave.channel == "X130_DE_time" and wave.rpm == 1796
    assert np.array_equal(wave.signal, OUTER)
    assert np.array_equal(read_waveform("130.mat", _cwru_mat(), "FE").signal, NORMAL)
    assert read_waveform("130.mat", _cwru_mat(), "X130_FE_time").channel == "X130_FE_time"
    with pytest.raises(
        ValueError, match="no single vibration variable 'BA'; the file has X130_DE_time, X130_FE_time"
    ):
        read_waveform("130.mat", _cwru_mat(), "BA")
    buffer = io.BytesIO()
    savemat(buffer, {"left": OUTER, "right": NORMAL})
    with pytest.raises(ValueError, match="2 vibration variables .*choose one with channel"):
        read_waveform("x.mat", buffer.getvalue())
    with pytest.raises(ValueError, match="could not be read as mat"):
        read_waveform("x.mat", b"not a mat file at all")


@pytest.mark.django_db
def test_a_cwru_mat_upload_takes_the_rpm_from_the_file_and_calls_the_fault(
    client, engineer_a, machine_a, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    bearing = BearingGeometry.objects.create(  # 6205-2RS, CWRU's drive end bearing, in mm
        designation="6205-2RS JEM", ball_count=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04
    )
    Component.objects.create(machine=machine_a, name="DE bearing", bearing=bearing)
    client.force_login(engineer_a)
    body = {"machine": machine_a.pk, "sample_rate": 12000, "file": SimpleUploadedFile("130.mat", _cwru_mat())}
    response = client.post("/api/manufacturing/recordings/", body)
    assert response.status_code == 201, response.content
    recording = VibrationRecording.objects.get(pk=response.json()["id"])
    assert recording.rpm == 1796 and recording.channel == "X130_DE_time" and recording.file_format == "mat"
    assert np.array_equal(recording_signal(recording=recording), OUTER)
    assert recording_analyse(recording_id=recording.pk) == "done"
    recording.refresh_from_db()
    assert recording.analysis.fault == "outer_race"
    # the fan-end channel of the same file, chosen by name, is analysed as what it holds (healthy)
    body = {
        "machine": machine_a.pk,
        "sample_rate": 12000,
        "channel": "FE",
        "file": SimpleUploadedFile("130.mat", _cwru_mat()),
    }
    fan_end = VibrationRecording.objects.get(
        pk=client.post("/api/manufacturing/recordings/", body).json()["id"]
    )
    assert recording_analyse(recording_id=fan_end.pk) == "done"
    fan_end.refresh_from_db()
    assert fan_end.channel == "X130_FE_time" and fan_end.analysis.fault == "none"
    # a sample rate that contradicts the file's time column is refused; nothing more is stored
    t = np.arange(4096) / 12000.0
    data = (
        "time,ax\n" + "\n".join(f"{a:.8f},{b:.6f}" for a, b in zip(t, OUTER[:4096], strict=True))
    ).encode()
    body = {
        "machine": machine_a.pk,
        "sample_rate": 48000,
        "rpm": 1796,
        "file": SimpleUploadedFile("x.csv", data),
    }
    response = client.post("/api/manufacturing/recordings/", body)
    assert response.status_code == 400 and "time column gives 12000" in response.json()["detail"]
    body = {"machine": machine_a.pk, "file": SimpleUploadedFile("x.npy", _npy(OUTER))}
    response = client.post("/api/manufacturing/recordings/", body)
    assert response.status_code == 400 and "sample rate must be" in response.json()["detail"]
    assert VibrationRecording.objects.count() == 2


@pytest.mark.django_db
def test_analyse_vibration_reads_a_mat_file_and_its_rpm(tmp_path, capsys):
    path = tmp_path / "130.mat"
    path.write_bytes(_cwru_mat())
    call_command("analyse_vibration", str(path), "--sample-rate", "12000", "--bearing", "6205-2RS", "--json")
    result = json.loads(capsys.readouterr().out)
    assert result["fault"] == "outer_race" and result["input"]["rpm"] == 1796
    assert result["input"]["channel"] == "X130_DE_time" and result["input"]["samples"] == OUTER.size
    # the command refuses a rate that contradicts a time column, as the upload does
    t = np.arange(4096) / 12000.0
    timed = tmp_path / "timed.csv"
    timed.write_text(
        "time,ax\n" + "\n".join(f"{a:.8f},{b:.6f}" for a, b in zip(t, OUTER[:4096], strict=True))
    )
    with pytest.raises(CommandError, match="time column gives 12000"):
        call_command("analyse_vibration", str(timed), "--sample-rate", "48000", "--rpm", "1796")
    call_command("analyse_vibration", str(timed), "--rpm", "1796", "--json")
    assert json.loads(capsys.readouterr().out)["input"]["sample_rate"] == pytest.approx(12000, rel=1e-4)
    with pytest.raises(CommandError, match="--rpm is required"):
        npy = tmp_path / "x.npy"
        npy.write_bytes(_npy(OUTER))
        call_command("analyse_vibration", str(npy), "--sample-rate", "12000")
