"""Fuzzing the manufacturing inputs: vibration recording uploads (API) and 3-D scans (point clouds, the
command and the API).

A recording upload, and a scan upload, is stored whole (its row, its files and its trail event; the
worker's analysis or registration then finishes or fails with a message) or refused with a 400 that
says why, leaving nothing behind. A point cloud is read into finite (n, 3) coordinates or refused with
a ValueError naming the file; `register_scan` answers a report or a CommandError - never a traceback.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audit.models import Event
from manufacturing.analysis.pointcloud import read_points
from manufacturing.models import Line, Machine, Site, VibrationRecording
from tests.proof.fuzzing import files_under, fuzz_settings, mutated

SITE = "site-a"


def _npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


# A real-looking signal: a 12 kHz recording of a shaft at 1797 rpm with a bearing tone.
_t = np.arange(4096) / 12000.0
SIGNAL = 0.3 * np.sin(2 * np.pi * 29.95 * _t) + 0.05 * np.sin(2 * np.pi * 162.2 * _t)
GOOD_NPY = _npy(SIGNAL)
GOOD_CSV = "\n".join(f"{v:.6f}" for v in SIGNAL).encode()

NUMERIC_DTYPES = st.sampled_from(["<f8", ">f4", "<i2", "<u1", "<c16", "|b1", "<M8[s]", "<U3", "<f2"])


@st.composite
def recording_files(draw) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["good", "array", "mutated npy", "csv text", "mutated csv"]))
    if kind == "good":
        return draw(st.sampled_from([("x.npy", GOOD_NPY), ("x.csv", GOOD_CSV)]))
    if kind == "array":
        shape = draw(st.sampled_from([(0,), (5,), (1024,), (1100,), (2, 600), (600, 2), (3, 3, 200)]))
        array = draw(hnp.arrays(NUMERIC_DTYPES, shape, elements=None))
        return "x.npy", _npy(array)
    if kind == "mutated npy":
        return "x.npy", draw(mutated(GOOD_NPY, hot_region=160))
    if kind == "mutated csv":
        return draw(st.sampled_from(["x.csv", "x.txt"])), draw(mutated(GOOD_CSV, hot_region=len(GOOD_CSV)))
    lines = [
        draw(st.sampled_from(["0.1", "1e308", "-1e308", "nan", "inf", "", "#c", "1,2", "a", "1;2", "0x1"]))
        for _ in range(draw(st.integers(0, 8)))
    ]
    body = "\n".join(lines * draw(st.sampled_from([1, 200])))
    return draw(st.sampled_from(["x.csv", "x.CSV", "x.txt", "x.wav", "x", "x.npy"])), body.encode()


NUMBER_FIELD = st.one_of(
    st.sampled_from(["12000", "1797", "0", "-1", "nan", "inf", "1e309", "", "x", "1e-300"]),
    st.floats().map(repr),
)


@pytest.fixture
def engineer(client, make_user):
    client.force_login(make_user("maintenance_engineer", site=SITE))
    return client


@pytest.fixture
def machine(db) -> Machine:
    site, _ = Site.objects.get_or_create(code=SITE, defaults={"name": "Site A"})
    line, _ = Line.objects.get_or_create(site=site, name="Line 1")
    return Machine.objects.create(line=line, tag="FZ-001", name="Fuzzed chiller")


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _state():
    return (
        VibrationRecording.objects.count(),
        Event.objects.filter(action="recording.upload").count(),
    )


@pytest.mark.django_db
@given(
    upload=recording_files(),
    sample_rate=NUMBER_FIELD,
    rpm=NUMBER_FIELD,
    units=st.sampled_from(["g", "mm/s", "volts", ""]),
)
@fuzz_settings(examples=30)
def test_recording_upload_is_stored_whole_or_refused_clearly(
    engineer, machine, media, upload, sample_rate, rpm, units
):
    from manufacturing.services.recordings import recording_analyse

    name, data = upload
    before, files_before = _state(), files_under(media)
    body = {"machine": machine.pk, "sample_rate": sample_rate, "rpm": rpm, "units": units}
    response = engineer.post(
        "/api/manufacturing/recordings/", {**body, "file": SimpleUploadedFile(name, data)}
    )
    assert response.status_code in (201, 400), response.content[:500]
    event(f"recording answered {response.status_code}")
    after, files_after = _state(), files_under(media)
    if response.status_code == 400:
        assert response.json(), "a refusal says why"
        assert after == before and files_after == files_before, "a refused upload left traces"
        return
    assert after == (before[0] + 1, before[1] + 1)
    recording = VibrationRecording.objects.get(pk=response.json()["id"])
    assert files_after - files_before == {media / recording.file.name}
    status = recording_analyse(recording_id=recording.pk)  # what the worker runs
    recording.refresh_from_db()
    event(f"analysis {status}")
    assert status in ("done", "failed")
    if status == "failed":
        assert recording.error.strip(), "a failed analysis says why"


# --- point clouds -----------------------------------------------------------------------------------
REFERENCE = np.random.default_rng(0).uniform(-50, 50, size=(60, 3))


def _ply_ascii(points: np.ndarray) -> bytes:
    header = (
        f"ply\nformat ascii 1.0\nelement vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    return (header + "\n".join(" ".join(f"{v:.4f}" for v in p) for p in points) + "\n").encode()


def _ply_binary(points: np.ndarray) -> bytes:
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\nproperty uchar red\nend_header\n"
    )
    body = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
    for i, axis in enumerate("xyz"):
        body[axis] = points[:, i]
    return header.encode() + body.tobytes()


def _xyz(points: np.ndarray) -> bytes:
    return ("# x y z\n" + "\n".join(" ".join(f"{v:.4f}" for v in p) for p in points) + "\n").encode()


def _mesh(file_type: str, **options) -> bytes:
    """A CAD model's export (a box: 8 vertices, 12 triangles), as trimesh writes it."""
    import trimesh

    exported = trimesh.creation.box(extents=[4.0, 2.0, 1.0]).export(file_type=file_type, **options)
    return exported if isinstance(exported, bytes) else exported.encode()


SEEDS = {
    ".ply": [
        _ply_ascii(REFERENCE[:12]),
        _ply_binary(REFERENCE[:12]),
        _mesh("ply", encoding="ascii"),
        _mesh("ply", encoding="binary"),
    ],
    ".xyz": [_xyz(REFERENCE[:12])],
    ".stl": [_mesh("stl"), _mesh("stl_ascii")],
    ".obj": [_mesh("obj")],
}
COORDINATES = st.floats(allow_nan=True, allow_infinity=True, width=32) | st.sampled_from([0.0, 1e30, -1e30])


@st.composite
def point_cloud_files(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from([".ply", ".ply", ".xyz", ".csv", ".txt", ".stl", ".stl", ".obj"]))
    kind = draw(st.sampled_from(["mutated", "mutated", "points", "header line"]))
    if kind == "points":
        count = draw(st.sampled_from([0, 1, 2, 3, 4, 20]))
        points = np.array(
            draw(st.lists(st.tuples(COORDINATES, COORDINATES, COORDINATES), min_size=count, max_size=count)),
            dtype=float,
        ).reshape(-1, 3)
        writer = draw(st.sampled_from([_ply_ascii, _ply_binary])) if suffix == ".ply" else _xyz
        return suffix, writer(points)
    seed = draw(st.sampled_from(SEEDS.get(suffix, SEEDS[".xyz"])))
    if kind == "header line":  # a plausible but wrong header line inserted near the top
        line = draw(
            st.sampled_from(
                [
                    "element vertex",
                    "element vertex -3",
                    "element vertex 99999999999",
                    "element face 2",
                    "format",
                    "format binary_big_endian 1.0",
                    "property",
                    "property double",
                    "property list uchar int x",
                    "property float x",
                    "end_header",
                    "comment",
                    "ply",
                ]
            )
        )
        lines = seed.split(b"\n")
        lines.insert(draw(st.integers(0, min(len(lines), 8))), line.encode())
        return suffix, b"\n".join(lines)
    return suffix, draw(mutated(seed, hot_region=200))


@pytest.mark.django_db
@given(scan=point_cloud_files())
@fuzz_settings(examples=40)
def test_point_clouds_are_read_or_refused_with_the_file_named(tmp_path, scan):
    suffix, data = scan
    path = tmp_path / f"scan{suffix}"
    path.write_bytes(data)
    reference = tmp_path / "reference.xyz"
    reference.write_bytes(_xyz(REFERENCE))
    try:
        points = read_points(path)
    except ValueError as refusal:
        event("scan refused")
        assert path.name in str(refusal), str(refusal)
        with pytest.raises(CommandError):
            call_command("register_scan", str(path), str(reference), "--json")
        return
    event("scan read")
    assert points.ndim == 2 and points.shape[1] == 3 and points.shape[0] >= 3
    assert np.all(np.isfinite(points))
    out = io.StringIO()
    try:
        call_command(
            "register_scan", str(path), str(reference), "--json", "--max-iterations", "10", stdout=out
        )
    except CommandError as refusal:  # e.g. coordinates too large to register: a message, not a traceback
        assert str(refusal).strip()
        return
    summary = json.loads(out.getvalue())
    assert summary["points"] == len(points)


@pytest.mark.django_db
@given(
    scan=point_cloud_files(),
    tolerance=st.sampled_from(["0.5", "0", "-1", "nan", "inf", "", "x", "1e-300", "1e308"]),
    unit=st.sampled_from(["mm", "in", "m", "furlong", ""]),
)
@fuzz_settings(examples=30)
def test_scan_upload_is_stored_whole_or_refused_clearly(engineer, machine, media, scan, tolerance, unit):
    """Through the API, as a scanner's software or a phone sends it; then the worker's step."""
    from manufacturing.models import ScanComparison
    from manufacturing.services.scans import scan_register

    suffix, data = scan

    def state():
        return ScanComparison.objects.count(), Event.objects.filter(action__startswith="scan.").count()

    before, files_before = state(), files_under(media)
    response = engineer.post(
        f"/api/manufacturing/assets/{machine.pk}/scans/",
        {
            "scan": SimpleUploadedFile(f"part{suffix}", data),
            "reference": SimpleUploadedFile("reference.xyz", _xyz(REFERENCE)),
            "tolerance": tolerance,
            "unit": unit,
        },
    )
    assert response.status_code in (200, 201, 400), response.content[:500]
    event(f"scan answered {response.status_code}")
    if response.status_code != 201:  # refused, or the same scan sent again (kept once)
        assert response.json(), "an answer says why or which scan"
        assert response.status_code == 400 or response["Idempotent-Replayed"] == "true"
        assert state() == before and files_under(media) == files_before, "nothing new may be left"
        return
    assert state() == (before[0] + 1, before[1] + 1)  # the row and its scan.upload event
    comparison = ScanComparison.objects.get(pk=response.json()["id"])
    # the scan, and the reference unless this asset keeps it already (stored once)
    assert 1 <= len(files_under(media) - files_before) <= 2
    status = scan_register(comparison_id=comparison.pk)  # what the worker runs
    comparison.refresh_from_db()
    event(f"registration {status}")
    assert status in ("done", "failed") and comparison.status == status
    if status == "failed":
        assert comparison.error.strip(), "a failed registration says why"
    else:
        assert comparison.summary["points"] >= 10 and np.isfinite(comparison.summary["rmse"])
    assert Event.objects.filter(action="scan.compare", resource_id=str(comparison.pk)).count() == 1
