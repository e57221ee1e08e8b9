"""manufacturing.analysis.pointcloud: readers with clear errors, ICP on a known rotation, deviations."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from manufacturing.analysis.pointcloud import deviation_map, icp, read_points, unit_mismatch


def _rotation(degrees: float, axis: int = 2) -> np.ndarray:
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def _part(n=1500, seed=0) -> np.ndarray:
    """An asymmetric box-with-a-boss surface sample (no rotational symmetry to confuse ICP)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([0, 0, 0], [4, 2, 1], size=(n, 3))
    face = rng.integers(0, 3, n)
    points[np.arange(n), face] = np.where(
        rng.random(n) < 0.5, 0.0, np.array([4.0, 2.0, 1.0])[face]
    )  # on a face
    boss = rng.uniform([0.5, 0.5, 1.0], [1.0, 1.0, 1.5], size=(n // 10, 3))
    return np.vstack([points, boss])


def test_icp_recovers_a_known_rotation_and_translation():
    reference = _part()
    rotation = _rotation(12) @ _rotation(-7, axis=0)
    scan = (reference - 0.3) @ rotation.T + np.array([0.5, -0.2, 0.1])
    result = icp(scan, reference)
    assert result.converged and result.rmse < 1e-6
    aligned = scan @ result.rotation.T + result.translation
    assert np.abs(aligned - reference).max() < 1e-5


def _random_rotation(rng) -> np.ndarray:
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


@pytest.mark.parametrize("partial", [False, True], ids=["whole", "seen-from-one-side"])
def test_a_scan_in_any_orientation_is_registered(partial):
    """A scanner's frame is not the reference's: the scan arrives turned any way (up to upside down),
    sampled elsewhere, with noise, and (one side seen) only part of the part. ICP started from the
    centroids alone found 16 of 60 whole scans and 12 of 60 partial ones; the coarse search finds them
    (scripts/scan_robustness.py)."""
    rng = np.random.default_rng(7)
    for case in range(6):
        reference, truth = _part(3000, seed=case), _part(3000, seed=100 + case)
        if partial:  # the faces seen from one viewpoint above (the boss in view: no symmetric twin)
            view = rng.normal(size=3)
            view[2] = abs(view[2]) + 0.5
            height = (truth - truth.mean(axis=0)) @ (view / np.linalg.norm(view))
            truth = truth[height > np.quantile(height, 0.35)]
        truth = truth + rng.normal(0, 0.005, truth.shape)
        rotation = _random_rotation(rng) if case else _rotation(180) @ _rotation(90, axis=0)
        scan = truth @ rotation.T + rng.uniform(-50, 50, 3)
        result = icp(scan, reference)
        aligned = scan @ result.rotation.T + result.translation
        assert np.abs(aligned - truth).max() < 0.03, f"case {case}: registered to the wrong pose"


def test_a_symmetric_part_keeps_the_smallest_turn():
    """A plain box fits itself four ways; a scan turned 5 degrees is turned back 5, not flipped."""
    box = _part(3000, seed=4)[:3000]  # the faces, no boss
    scan = box @ _rotation(5).T + 1.0
    result = icp(scan, box)
    assert result.summary(0.01)["rotation_deg"] == pytest.approx(5, abs=0.01)
    assert np.abs(scan @ result.rotation.T + result.translation - box).max() < 1e-5


def test_deviation_flags_a_dent_beyond_tolerance():
    reference = _part(seed=1)
    scan = reference.copy()
    dent = np.flatnonzero((scan[:, 2] == 1.0) & (scan[:, 0] > 3.0))
    scan[dent, 2] -= 0.05
    scan = scan @ _rotation(5).T
    summary = icp(scan, reference).summary(tolerance=0.02)
    assert summary["beyond_tolerance"] >= 0.8 * dent.size
    assert set(summary["beyond_indices"]) <= set(dent.tolist())
    assert summary["deviation_max"] == pytest.approx(0.05, abs=0.01)


def _plate(n: int, rng) -> np.ndarray:
    """An 80 x 50 x 6 mm plate's faces, each face drawn as often as the others whatever its size: the
    sides end up 8-13 times as dense as the top and bottom, as a scanner sees faces turned towards it."""
    low, high = np.zeros(3), np.array([80.0, 50.0, 6.0])
    points = rng.uniform(low, high, size=(n, 3))
    face = rng.integers(0, 3, n)
    points[np.arange(n), face] = np.where(rng.random(n) < 0.5, low[face], high[face])
    return points


def test_a_sparse_face_beside_a_dense_one_is_not_out_of_tolerance():
    """Deviations are measured to the reference surface, also where the scan's density changes from face
    to face: a perfect plate sampled elsewhere flags only its dent. Measured to planes within a fixed
    reach of the median spacing (set by the dense sides), 2,208 of 22,456 points of a similar part read
    beyond 0.5 mm on the sparse faces, besides 92 in the dent (scripts/scan_robustness.py)."""
    rng = np.random.default_rng(5)
    reference, scan = _plate(12000, rng), _plate(12000, rng)
    dent = (np.abs(scan[:, 2] - 6) < 1e-9) & ((scan[:, 0] - 60) ** 2 + (scan[:, 1] - 30) ** 2 < 64)
    scan[dent, 2] -= 1.5
    scan = scan + rng.normal(0, 0.02, scan.shape)
    result = icp(scan @ _rotation(20).T + 3.0, reference)
    beyond = result.deviations > 0.5
    assert beyond[dent].all() and result.deviations[dent].max() == pytest.approx(1.5, abs=0.1)
    assert beyond[~dent].sum() <= 0.005 * len(scan), f"{beyond[~dent].sum()} points off the dent"


def _bracket_mesh():
    """A CAD model as a mesh: an 80 x 50 x 6 plate with a 15 x 15 x 14 boss at one corner (two boxes;
    24 vertices: its corners are all a point reader would see)."""
    import trimesh

    plate = trimesh.creation.box(extents=[80, 50, 6])
    boss = trimesh.creation.box(extents=[15, 15, 14])
    boss.apply_translation([-25, -12, 10])  # on the plate's top (z = 3), towards one corner
    return trimesh.util.concatenate([plate, boss])


@pytest.mark.parametrize("file_type", ["stl", "obj", "ply"])
def test_a_cad_mesh_is_read_as_its_surface(tmp_path, file_type):
    mesh = _bracket_mesh()
    path = tmp_path / f"bracket.{file_type}"
    exported = mesh.export(file_type=file_type)
    path.write_bytes(exported if isinstance(exported, bytes) else exported.encode())
    points = read_points(path, mesh_points=20_000)
    assert points.shape == (20_000, 3)

    def on_box(centre, half):  # within the box and on one of its faces
        offset, half = np.abs(points - np.asarray(centre)), np.asarray(half, dtype=float)
        return np.all(offset <= half + 1e-6, axis=1) & np.any(np.isclose(offset, half, atol=1e-6), axis=1)

    plate, boss = on_box([0, 0, 0], [40, 25, 3]), on_box([-25, -12, 10], [7.5, 7.5, 7])
    assert (plate | boss).all()  # on the surface, not only at the 24 corners
    # drawn by area: the plate's faces and the boss's base, which lies on the plate's top
    assert plate.mean() == pytest.approx((2 * (80 * 50 + 80 * 6 + 50 * 6) + 15 * 15) / mesh.area, abs=0.01)


def test_a_scan_is_registered_onto_its_cad_model(tmp_path):
    """Scan-to-CAD: the reference is the model (a mesh, sampled on its surface), the scan a point cloud
    in the scanner's frame with a dent; the dent, and only about it, is beyond tolerance."""
    import trimesh

    mesh = _bracket_mesh()
    (tmp_path / "model.stl").write_bytes(mesh.export(file_type="stl"))
    reference = read_points(tmp_path / "model.stl", mesh_points=40_000)
    truth, _ = trimesh.sample.sample_surface(mesh, 12_000, seed=9)
    truth = np.asarray(truth)
    dent = np.isclose(truth[:, 2], 3.0) & ((truth[:, 0] - 20) ** 2 + (truth[:, 1] - 5) ** 2 < 36)
    truth[dent, 2] -= 1.0
    rng = np.random.default_rng(9)
    truth = truth + rng.normal(0, 0.01, truth.shape)
    scan = truth @ (_rotation(140) @ _rotation(35, axis=0)).T + [300.0, -20.0, 45.0]
    result = icp(scan, reference)
    assert np.abs(scan @ result.rotation.T + result.translation - truth).max() < 0.05
    beyond = result.deviations > 0.3
    assert beyond[dent].all()
    assert beyond[~dent].sum() <= 0.005 * len(scan), f"{beyond[~dent].sum()} points off the dent"


def test_a_unit_slip_is_refused_before_registering(tmp_path):
    """A reference exported in inches or metres against a scan in millimetres (or the other way round)
    registers into a part wholly out of tolerance: refused, naming the likely units. A scan of part of
    the part is smaller and stands; one larger than its part is refused with what to check."""
    reference = _part(2000, seed=3) * 25.0  # a 100 x 50 x 25 mm block
    assert unit_mismatch(reference, reference) is None
    assert unit_mismatch(reference[reference[:, 0] < 40], reference) is None  # one end of it
    inches = unit_mismatch(reference, reference / 25.4)
    assert "25.4 times larger than the reference, the ratio of inches and millimetres" in inches
    metres = unit_mismatch(reference / 1000, reference)
    assert "1,000 times smaller" in metres and "metres and millimetres" in metres
    assert "crop it to the part" in unit_mismatch(reference * 3, reference)
    np.savetxt(tmp_path / "scan.xyz", reference)
    np.savetxt(tmp_path / "model.xyz", reference / 25.4)
    with pytest.raises(CommandError, match="the ratio of inches and millimetres"):
        call_command("register_scan", str(tmp_path / "scan.xyz"), str(tmp_path / "model.xyz"))


def test_the_map_of_a_square_part_is_drawn_in_its_own_frame():
    """A square plate's principal axes are any pair in its plane: the map used them and drew the plate
    turned (up to 45 degrees). A reference whose own x and y hold its spread (a CAD frame) is drawn on
    them; one in a scanner's frame still on its principal axes."""
    rng = np.random.default_rng(2)
    plate = np.column_stack(
        [rng.uniform(-60, 60, 4000), rng.uniform(-60, 60, 4000), rng.choice([0.0, 6.0], 4000)]
    )
    drawn = np.array(deviation_map(plate, plate, np.zeros(len(plate)), 0.5, limit=4000))
    assert np.abs(drawn[:, :2]).max() <= 61  # square to the page: corners near (±60, ±60), not 85 out
    turned = plate @ _rotation(30, axis=0).T  # the same plate in a scanner's frame
    drawn = np.array(deviation_map(turned, turned, np.zeros(len(turned)), 0.5, limit=4000))
    assert np.abs(drawn[:, :2]).max() <= 85 and np.ptp(drawn[:, 0]) > 100 and np.ptp(drawn[:, 1]) > 100


def test_readers_and_their_errors(tmp_path):
    points = _part(50)
    xyz = tmp_path / "a.xyz"
    np.savetxt(xyz, points)
    assert np.allclose(read_points(xyz), points)
    ply = tmp_path / "a.ply"
    header = f"ply\nformat binary_little_endian 1.0\nelement vertex {len(points)}\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nend_header\n"
    body = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1")])
    body["x"], body["y"], body["z"] = points.T
    ply.write_bytes(header.encode() + body.tobytes())
    assert np.allclose(read_points(ply), points, atol=1e-6)
    ascii_ply = tmp_path / "b.ply"
    ascii_ply.write_text(
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty double x\nproperty double y\nproperty double z\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
    )
    assert read_points(ascii_ply).shape == (3, 3)
    # a scanner's export: a header row, // comments, colour columns after x, y, z
    export = tmp_path / "scan.csv"
    export.write_text(
        "//CloudCompare export\nX,Y,Z,R,G,B\n" + "\n".join(f"{x},{y},{z},255,0,0" for x, y, z in points)
    )
    assert np.allclose(read_points(export), points)
    # a European spreadsheet's export: semicolons between, decimal commas within
    european = tmp_path / "scan-de.csv"
    european.write_text(
        "X;Y;Z\n" + "\n".join(f"{x:.6f};{y:.6f};{z:.6f}".replace(".", ",") for x, y, z in points)
    )
    assert np.allclose(read_points(european), points, atol=1e-6)
    tabs = tmp_path / "scan.txt"
    tabs.write_text("\n".join(f"{x:.6f}\t{y:.6f}\t{z:.6f}" for x, y, z in points))
    assert np.allclose(read_points(tabs), points, atol=1e-6)
    for name, content, message in [
        ("c.step", "ISO-10303-21;", "upload a .ply or .xyz"),
        (
            "c.stl",
            "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0\n",
            "no vertices or faces could be read from this STL",
        ),
        ("d.xyz", "1 2\n3 4 5\n6 7 8\n", "point 1 has fewer than 3"),
        ("h.xyz", "x y z\n1 2 3\nfour 5 6\n7 8 9\n", "point 2 has a coordinate that is not a number"),
        ("e.ply", "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n", "x, y and z"),
        ("f.ply", "nope\n", "not a PLY"),
    ]:
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(ValueError, match=message):
            read_points(path)
    truncated = tmp_path / "g.ply"
    truncated.write_bytes(header.encode() + body.tobytes()[:30])
    with pytest.raises(ValueError, match="file ends after"):
        read_points(truncated)


def test_register_scan_command(tmp_path, capsys):
    reference = _part(seed=2)
    np.savetxt(tmp_path / "ref.xyz", reference)
    np.savetxt(tmp_path / "scan.xyz", reference @ _rotation(8).T + 0.1)
    call_command(
        "register_scan",
        str(tmp_path / "scan.xyz"),
        str(tmp_path / "ref.xyz"),
        "--tolerance",
        "0.01",
        "--json",
    )
    result = json.loads(capsys.readouterr().out)
    assert result["beyond_tolerance"] == 0 and result["rmse"] < 1e-6
    with pytest.raises(CommandError, match="does not exist"):
        call_command("register_scan", str(tmp_path / "nope.ply"), str(tmp_path / "ref.xyz"))


def test_the_wear_rate_and_when_it_reaches_the_tolerance():
    """0.1 mm deeper every 30 days from 0.2 mm: 0.5 mm is reached 30 days after the third scan."""
    from manufacturing.analysis.pointcloud import wear_trend

    trend = wear_trend([0, 30, 60], [0.2, 0.3, 0.4], tolerance=0.5)
    assert trend.rate_per_day == pytest.approx(0.1 / 30)
    assert trend.reaches_in_days == pytest.approx(30) and not trend.beyond
    assert (trend.scans, trend.span_days, trend.latest) == (3, 60, 0.4)
    # noise about the line: least squares, not the last two scans
    noisy = wear_trend([0, 30, 60, 90], [0.2, 0.35, 0.35, 0.5], tolerance=0.8)
    assert noisy.rate_per_day == pytest.approx(0.003)  # the last two scans alone: 0.005
    beyond = wear_trend([0, 30], [0.4, 0.6], tolerance=0.5)
    assert beyond.beyond and beyond.reaches_in_days is None
    steady = wear_trend([0, 30, 60], [0.3, 0.3, 0.28], tolerance=0.5)  # not growing: never reached
    assert steady.rate_per_day < 0 and steady.reaches_in_days is None and not steady.beyond
    # the fitted line past the tolerance while the latest scan is not: it is reached now
    assert wear_trend([0, 1, 2], [0.1, 0.9, 0.45], tolerance=0.5).reaches_in_days == 0.0
    assert wear_trend([0], [0.3], tolerance=0.5) is None
    assert wear_trend([0, 0.2], [0.2, 0.3], tolerance=0.5) is None  # one sitting: no rate
    assert wear_trend([0, 30, float("nan")], [0.2, 0.3, 0.4], tolerance=0.5).scans == 2
