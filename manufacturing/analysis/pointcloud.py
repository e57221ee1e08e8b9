"""3-D scans of a component against a reference: PLY/XYZ reading (and meshes: STL, OBJ, PLY with faces,
read by trimesh and sampled on their surface), ICP registration (a coarse pose search, then
point-to-plane steps; scipy cKDTree for correspondences) and per-point deviation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from manufacturing.analysis.waveform_files import column_layout

PLY_TYPES = {
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8", "int": "i4", "int32": "i4",
    "uint": "u4", "uint32": "u4", "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
}  # fmt: skip
MAX_POINTS = 5_000_000
DEVIATION_CHUNK = 200_000  # points measured at a time (`_deviations`)
FIT_POINTS = 20_000  # the product fits the transform on this many scan points (`icp`'s fit_points)
MESH_POINTS = 100_000  # points drawn on a mesh's surface (a CAD model's box has 8 vertices)
MAX_FACES = 5_000_000
MESH_SUFFIXES = (".stl", ".obj")


def _mesh_points(path: Path, file_type: str, count: int) -> np.ndarray:
    """`count` points drawn uniformly (by area, seeded) on the surface of the mesh in `path` (trimesh);
    a file with vertices and no faces gives its vertices."""
    import trimesh

    try:
        with open(path, "rb") as handle:
            mesh = trimesh.load(handle, file_type=file_type, force="mesh", process=False)
        faces, vertices = np.asarray(mesh.faces), np.asarray(mesh.vertices, dtype=float)
    except Exception as error:  # trimesh raises what its parsers meet: a bad file is the user's to fix
        raise ValueError(
            f"{path.name}: cannot be read as a {file_type.upper()} mesh ({error})"[:300]
        ) from None
    if len(faces) > MAX_FACES:
        raise ValueError(f"{path.name}: {len(faces):,} faces; at most {MAX_FACES:,} are accepted")
    if not np.all(np.isfinite(vertices)):
        raise ValueError(f"{path.name}: NaN or infinite coordinates")
    if len(faces) == 0 and len(vertices) == 0:
        raise ValueError(
            f"{path.name}: no vertices or faces could be read from this {file_type.upper()} file"
        )
    if len(faces) == 0:
        return vertices.reshape(-1, 3)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{path.name}: a face refers to a vertex that is not there")
    if not mesh.area > 0:
        raise ValueError(f"{path.name}: the mesh's faces have no area")
    points, _ = trimesh.sample.sample_surface(mesh, count, seed=0)
    return np.asarray(points, dtype=float)


def _read_ply(path: Path, mesh_points: int = MESH_POINTS) -> np.ndarray:
    faces = 0
    with open(path, "rb") as handle:
        if handle.readline().strip() != b"ply":
            raise ValueError(f"{path.name}: not a PLY file (first line must be 'ply')")
        fmt, count, properties, in_vertex, header_done = None, None, [], False, False
        for _ in range(200):
            line = handle.readline().decode("ascii", "replace").strip()
            parts = line.split()
            if not parts or parts[0] in ("comment", "obj_info"):
                continue
            if parts[0] == "end_header":
                header_done = True
                break
            if len(parts) < {"format": 2, "element": 3, "property": 3}.get(parts[0], 1):
                raise ValueError(f"{path.name}: incomplete PLY header line {line[:80]!r}")
            if parts[0] == "format":
                fmt = parts[1]
            elif parts[0] == "element":
                in_vertex = parts[1] == "vertex"
                if parts[1] == "face" and parts[2].isdigit():
                    faces = int(parts[2])
                if in_vertex:
                    if not parts[2].isdigit():
                        raise ValueError(
                            f"{path.name}: the vertex count {parts[2][:20]!r} is not a whole number"
                        )
                    count = int(parts[2])
                elif count is None:
                    raise ValueError(f"{path.name}: the vertex element must come first")
            elif parts[0] == "property" and in_vertex:
                if parts[1] == "list":
                    raise ValueError(f"{path.name}: list properties on vertices are not supported")
                if parts[1] not in PLY_TYPES:
                    raise ValueError(f"{path.name}: unknown property type {parts[1]!r}")
                properties.append((parts[2], PLY_TYPES[parts[1]]))
        if not header_done:
            raise ValueError(f"{path.name}: PLY header has no end_header")
        names = [name for name, _ in properties]
        if len(set(names)) != len(names):
            raise ValueError(f"{path.name}: a vertex property is declared twice")
        if count is None or not {"x", "y", "z"} <= set(names):
            raise ValueError(f"{path.name}: PLY needs a vertex element with x, y and z properties")
        if count > MAX_POINTS:
            raise ValueError(f"{path.name}: {count} points; at most {MAX_POINTS} are accepted")
        if faces:  # a mesh (a CAD export): its surface, not only its corners
            if faces > MAX_FACES:
                raise ValueError(f"{path.name}: {faces:,} faces; at most {MAX_FACES:,} are accepted")
            return _mesh_points(path, "ply", mesh_points)
        if fmt == "ascii":
            rows = [handle.readline().split() for _ in range(count)]
            try:
                data = np.array([[float(r[names.index(a)]) for a in "xyz"] for r in rows])
            except (ValueError, IndexError):
                raise ValueError(f"{path.name}: a vertex row is short or not numeric") from None
            return data
        if fmt not in ("binary_little_endian", "binary_big_endian"):
            raise ValueError(f"{path.name}: unknown PLY format {fmt!r}")
        order = "<" if fmt == "binary_little_endian" else ">"
        dtype = np.dtype([(name, order + kind) for name, kind in properties])
        raw = handle.read(dtype.itemsize * count)
        if len(raw) < dtype.itemsize * count:
            raise ValueError(f"{path.name}: file ends after {len(raw) // dtype.itemsize} of {count} vertices")
        vertices = np.frombuffer(raw, dtype=dtype, count=count)
        return np.column_stack([vertices[a].astype(float) for a in "xyz"])


def _numeric(cells: list[str]) -> bool:
    try:
        [float(cell) for cell in cells]
    except ValueError:
        return False
    return True


def read_points(path: str | Path, *, mesh_points: int = MESH_POINTS) -> np.ndarray:
    """An (n, 3) array from a .ply (ascii or binary) or .xyz/.txt/.csv (x y z per line; further columns such
    as colours or normals ignored; `#` and `//` comments and one header row skipped) file; a mesh (.stl,
    .obj, or a .ply with faces: a CAD model's export) gives `mesh_points` points drawn on its surface."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    if path.suffix.lower() in MESH_SUFFIXES:
        points = _mesh_points(path, path.suffix.lower().lstrip("."), mesh_points)
    elif path.suffix.lower() == ".ply":
        points = _read_ply(path, mesh_points)
    elif path.suffix.lower() in (".xyz", ".txt", ".csv"):
        try:
            lines = [
                line
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "//"))
            ]
            # the same separators and decimal marks as a recording's CSV ("1,5;2,0;3,25" from a spreadsheet)
            delimiter, decimal_comma = column_layout(
                lines[1] if len(lines) > 1 else lines[0] if lines else ""
            )
            if decimal_comma:
                lines = [line.replace(",", ".") for line in lines]
            lines = [line.replace(delimiter or ",", " ") for line in lines]
            # a header row (x y z, X,Y,Z,R,G,B as scanners write)
            if lines and not _numeric(lines[0].split()[:3]):
                lines = lines[1:]
            try:  # numpy's parser: 2 million points in about two seconds (the loop below: eleven)
                if lines:
                    return _checked(
                        path, np.loadtxt(lines, usecols=(0, 1, 2), ndmin=2, comments=None, dtype=float)
                    )
            except ValueError:  # a short row or a word: found and named below, point by point
                pass
            rows = [line.split() for line in lines]
            if any(len(r) < 3 for r in rows):
                bad = next(i for i, r in enumerate(rows, 1) if len(r) < 3)
                raise ValueError(f"{path.name}: point {bad} has fewer than 3 coordinates")
            if not all(_numeric(r[:3]) for r in rows):
                bad = next(i for i, r in enumerate(rows, 1) if not _numeric(r[:3]))
                raise ValueError(f"{path.name}: point {bad} has a coordinate that is not a number")
            points = np.array([[float(v) for v in r[:3]] for r in rows])
        except UnicodeDecodeError:
            raise ValueError(f"{path.name}: an .xyz file must be text (x y z per line)") from None
        except ValueError as error:
            raise ValueError(str(error) if path.name in str(error) else f"{path.name}: {error}") from None
    else:
        raise ValueError(f"{path.name}: upload a .ply or .xyz point cloud, or an .stl or .obj mesh")
    return _checked(path, points)


def _checked(path: Path, points: np.ndarray) -> np.ndarray:
    if points.ndim != 2 or points.shape[0] < 3:
        raise ValueError(f"{path.name}: at least 3 points are needed")
    if not np.all(np.isfinite(points)):
        raise ValueError(f"{path.name}: NaN or infinite coordinates")
    return points


UNIT_RATIOS = {
    25.4: "inches and millimetres",
    1000.0: "metres and millimetres",
    304.8: "feet and millimetres",
    39.37: "metres and inches",
    10.0: "centimetres and millimetres",
}


def extent(points: np.ndarray) -> float:
    """The points' size: their longest spread along a principal axis, 0.5th to 99.5th percentile (a stray
    point does not count)."""
    centred = points - points.mean(axis=0)
    along = centred @ _principal_axes(points).T
    return float(np.max(np.percentile(along, 99.5, axis=0) - np.percentile(along, 0.5, axis=0)))


def unit_mismatch(scan: np.ndarray, reference: np.ndarray) -> str | None:
    """Why the scan and its reference cannot be in the same unit, or None. A scan may show part of its
    part, so it may be smaller, but not larger (beyond twice); smaller by exactly a unit's ratio
    (25.4, 1000, ...: within 3%) is taken for a unit too. Registering them anyway would turn a unit
    slip into a part reported wholly out of tolerance."""
    size, reference_size = extent(scan), extent(reference)
    if not size > 0 or not reference_size > 0:
        return None
    ratio = size / reference_size
    larger = ratio > 1
    factor = ratio if larger else 1 / ratio
    unit = next((units for value, units in UNIT_RATIOS.items() if abs(factor / value - 1) <= 0.03), None)
    if not (ratio > 2 or unit and factor > 5):
        return None
    said = (
        f"the scan spans {size:.4g} and the reference {reference_size:.4g} (in the files' numbers): the scan "
        f"is {f'{factor:,.0f}' if factor >= 100 else f'{factor:.3g}'} times {'larger' if larger else 'smaller'} "
        "than the reference"
    )
    if unit:
        return f"{said}, the ratio of {unit}: export both in the same unit"
    return (
        f"{said}, and a scan cannot be larger than its part: crop it to the part if it shows the fixture "
        "or table around it, and check that both files are in the same unit"
    )


def rigid_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rotation and translation taking `source` onto paired `target` (Kabsch, SVD)."""
    cs, ct = source.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((source - cs).T @ (target - ct))
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return rotation, ct - rotation @ cs


@dataclass
class Registration:
    rotation: np.ndarray
    translation: np.ndarray
    rmse: float
    iterations: int
    converged: bool
    deviations: np.ndarray  # per source point, distance to the reference after registration

    def summary(self, tolerance: float) -> dict:
        beyond = self.deviations > tolerance
        return {
            "rotation": np.round(self.rotation, 6).tolist(),
            "translation": np.round(self.translation, 6).tolist(),
            "rmse": self.rmse,
            "iterations": self.iterations,
            "converged": self.converged,
            "rotation_deg": round(_angle(self.rotation), 2),
            "points": int(self.deviations.size),
            "tolerance": tolerance,
            "beyond_tolerance": int(beyond.sum()),
            "beyond_tolerance_fraction": round(float(beyond.mean()), 6),
            "deviation_max": float(self.deviations.max()),
            "deviation_mean": float(self.deviations.mean()),
            "deviation_p95": float(np.quantile(self.deviations, 0.95)),
            "beyond_indices": np.flatnonzero(beyond)[:1000].tolist(),
        }


def _surface(reference: np.ndarray, tree, k: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Each reference point's surface normal, whether its neighbourhood is flat enough to trust it (the k
    nearest points, PCA), how far its tangent plane may be used (twice the neighbourhood's radius: a
    scan's density varies, from face to face and with the angle it was seen at), and the reference's
    point spacing (median nearest-neighbour distance)."""
    k = min(k, len(reference))
    distances, index = tree.query(reference, k=k)
    neighbours = reference[index] - reference[index].mean(axis=1, keepdims=True)
    values, vectors = np.linalg.eigh(np.einsum("nki,nkj->nij", neighbours, neighbours))
    flat = values[:, 0] <= 0.02 * np.maximum(values.sum(axis=1), 1e-30)  # not an edge or a corner
    spacing = float(np.median(distances[:, 1])) if k > 1 else 0.0
    return vectors[:, :, 0], flat, 2 * distances[:, -1], spacing


def _rotation_of(vector: np.ndarray) -> np.ndarray:
    """The rotation by |vector| radians about `vector` (Rodrigues)."""
    angle = float(np.linalg.norm(vector))
    if angle < 1e-15:
        return np.eye(3)
    x, y, z = vector / angle
    skew = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * skew + (1 - np.cos(angle)) * skew @ skew


def _deviations(moved, reference, tree, surface, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each moved point to the reference surface, and the reference point it was measured
    against: the nearest tangent plane among its `k` nearest reference points whose neighbourhood is flat
    and which lie within their plane's reach (`_surface`), or the distance to the nearest point where that
    is less (the surface holds both). So a scan sampled elsewhere than its reference is not penalised for
    falling between the reference's points, nor, beside an edge, for being nearest to a point whose
    neighbourhood straddles two faces."""
    if len(moved) > DEVIATION_CHUNK:  # a few million points at k 16 would hold gigabytes at once
        parts = [
            _deviations(moved[start : start + DEVIATION_CHUNK], reference, tree, surface, k)
            for start in range(0, len(moved), DEVIATION_CHUNK)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    normals, flat, reach, _ = surface
    k = min(k, len(reference))
    distances, index = tree.query(moved, k=k)
    distances, index = distances.reshape(len(moved), k), index.reshape(len(moved), k)
    plane = np.abs(np.einsum("nkj,nkj->nk", moved[:, None, :] - reference[index], normals[index]))
    plane = np.where(flat[index] & (distances <= reach[index]), plane, np.inf)
    best = np.argmin(plane, axis=1)
    rows = np.arange(len(moved))
    usable = np.isfinite(plane[rows, best])
    on_plane = usable & (plane[rows, best] < distances[:, 0])  # the surface holds both
    return (
        np.where(on_plane, plane[rows, best], distances[:, 0]),
        np.where(on_plane, index[rows, best], index[:, 0]),
    )


def _refine(source, reference, tree, surface, rotation, translation, max_iterations, tolerance, trim):
    """Point-to-plane ICP from (rotation, translation): (rotation, translation, trimmed RMS, iterations,
    converged)."""
    normals = surface[0]
    previous, error, converged, iteration = np.inf, np.inf, False, 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 (reported)
        moved = source @ rotation.T + translation
        distances, index = _deviations(moved, reference, tree, surface)
        keep = distances <= np.quantile(distances, trim)
        p, q, n = moved[keep], reference[index[keep]], normals[index[keep]]
        system = np.hstack([np.cross(p, n), n])
        step, *_ = np.linalg.lstsq(system, np.einsum("ij,ij->i", q - p, n), rcond=None)
        step_r = _rotation_of(step[:3])
        rotation, translation = step_r @ rotation, step_r @ translation + step[3:]
        error = float(np.sqrt(np.mean(distances[keep] ** 2)))
        if abs(previous - error) < tolerance:
            converged = True
            break
        previous = error
    return rotation, translation, error, iteration, converged


def _principal_axes(points: np.ndarray) -> np.ndarray:
    """The rows are the points' principal axes, largest spread first, as a proper rotation."""
    _, _, axes = np.linalg.svd(points - points.mean(axis=0), full_matrices=False)
    if np.linalg.det(axes) < 0:
        axes[2] = -axes[2]
    return axes


def _turns() -> list[np.ndarray]:
    """The 24 rotations that map the coordinate axes onto themselves (signed permutations, det +1)."""
    turns = []
    for order in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)):
        for signs in np.array(np.meshgrid([1, -1], [1, -1], [1, -1])).T.reshape(-1, 3):
            turn = np.zeros((3, 3))
            turn[np.arange(3), order] = signs
            if np.linalg.det(turn) > 0:
                turns.append(turn)
    return turns


def _angle(rotation: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1.0, 1.0))))


def coarse_alignment(source, reference, tree, surface, *, sample: int = 1500, keep: int = 6):
    """A starting pose for ICP wherever the scan lies in its scanner's frame. Candidates: the scan as
    given, the 24 ways of laying its principal axes on the reference's (a box's faces, a shaft's ends)
    and 60 turns spread over all orientations (the icosahedral group: no start is more than about 40
    degrees from any pose, which matters where a partial scan's principal axes are not the part's).
    Each is screened by 16 ICP steps on 300 scan points (seeded); the `keep` best run 30 steps on
    `sample` points. The score is the mean squared distance capped at three point spacings (a trimmed
    RMS hides a 10% misfit); the lowest wins, among candidates within 2% of it (a symmetric part) the
    smallest turn.
    ICP alone, started from the centroids, finds the right pose only within a few tens of degrees."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(1)
    if len(source) > sample:
        source = source[np.sort(rng.choice(len(source), sample, replace=False))]
    screen = source[np.sort(rng.choice(len(source), min(len(source), 300), replace=False))]
    source_axes, reference_axes = _principal_axes(source), _principal_axes(reference)
    starts = (
        [np.eye(3)]
        + [reference_axes.T @ turn @ source_axes for turn in _turns()]
        + list(Rotation.create_group("I").as_matrix()[1:])
    )
    centre, target = source.mean(axis=0), reference.mean(axis=0)
    cap = 3 * surface[3]

    def run(points, rotation, translation, iterations):
        rotation, translation, *_ = _refine(
            points, reference, tree, surface, rotation, translation, iterations, 1e-7, 0.9
        )
        distances, _ = _deviations(points @ rotation.T + translation, reference, tree, surface)
        return float(np.mean(np.minimum(distances, cap) ** 2)), rotation, translation

    screened = sorted(
        (run(screen, start, target - start @ centre, 16) for start in starts), key=lambda t: t[0]
    )
    finished = [run(source, rotation, translation, 30) for _, rotation, translation in screened[:keep]]
    best = min(error for error, *_ in finished)
    near = [t for t in finished if t[0] <= best * 1.02 + 1e-12]
    _, rotation, translation = min(near, key=lambda t: _angle(t[1]))
    return rotation, translation


def icp(
    source: np.ndarray,
    reference: np.ndarray,
    *,
    max_iterations: int = 60,
    tolerance: float = 1e-7,
    trim: float = 0.9,
    fit_points: int = 0,
) -> Registration:
    """Register `source` (the scan) onto `reference`: a coarse pose (`coarse_alignment`: the best of 85
    starting turns), then point-to-plane ICP (linearised, each step a true
    rotation) on the closest `trim` share of correspondences (robust to a defect or partial overlap);
    deviations are measured to the reference surface (`_deviations`). `fit_points` (0: all) fits the
    transform on that many source points drawn at random (seeded); the deviations are then measured for
    every point."""
    from scipy.spatial import cKDTree

    tree = cKDTree(reference)
    surface = _surface(reference, tree)
    everything = source
    if 0 < fit_points < len(source):
        source = source[np.sort(np.random.default_rng(0).choice(len(source), fit_points, replace=False))]
    rotation, translation = coarse_alignment(source, reference, tree, surface)
    rotation, translation, _, iteration, converged = _refine(
        source, reference, tree, surface, rotation, translation, max_iterations, tolerance, trim
    )
    deviations, _ = _deviations(
        everything @ rotation.T + translation, reference, tree, surface, k=16
    )  # more neighbours than ICP needs: beside a densely sampled face, a sparse one's points
    return Registration(
        rotation, translation, float(np.sqrt(np.mean(deviations**2))), iteration, converged, deviations
    )


def deviation_map(
    points: np.ndarray, reference: np.ndarray, deviations: np.ndarray, tolerance: float, limit=3000
):
    """The registered scan flattened for a map: each point's coordinates on the reference's two main
    axes with its deviation; at most `limit` points drawn at random (seeded) plus every point beyond
    `tolerance` (up to 1,000), those last so that they are drawn on top. The main axes are the
    reference's own x, y or z where two of them hold its spread (a CAD model's frame: a square plate is
    drawn square, not turned by whatever its principal axes happen to be), else its principal axes."""
    centre = reference.mean(axis=0)
    centred = reference - centre
    _, spread, axes = np.linalg.svd(centred, full_matrices=False)
    variance = centred.var(axis=0)
    own = np.argsort(variance)[::-1][:2]
    if variance[own].sum() >= 0.98 * (spread[:2] ** 2).sum() / len(reference):
        axes = np.eye(3)[own]
    flat = (points - centre) @ axes[:2].T
    beyond = np.flatnonzero(deviations > tolerance)[:1000]
    within = np.flatnonzero(deviations <= tolerance)
    if within.size > limit:
        within = np.sort(np.random.default_rng(0).choice(within, limit, replace=False))
    chosen = np.concatenate([within, beyond])
    return [
        [round(float(u), 4), round(float(v), 4), round(float(d), 4)]
        for (u, v), d in zip(flat[chosen], deviations[chosen], strict=True)
    ]


@dataclass
class WearTrend:
    """How a component's deviation from its reference grows from scan to scan (a wear rate)."""

    rate_per_day: float  # the least-squares slope of the deviation over the scans' dates
    scans: int
    span_days: float  # from the first scan to the latest
    latest: float  # the latest scan's deviation
    fitted_latest: float  # the fitted line at the latest scan's date
    beyond: bool  # the latest scan's deviation is beyond the tolerance already
    # from the latest scan until the line reaches the tolerance; None when beyond it or not growing
    reaches_in_days: float | None

    @property
    def rate_per_month(self) -> float:
        return self.rate_per_day * 30.44  # an average month


def wear_trend(days, deviations, tolerance: float) -> WearTrend | None:
    """The wear rate of a component from its scans: a straight line fitted by least squares to each
    scan's deviation (its largest, say) against its date in days, and when that line reaches `tolerance`
    counted from the latest scan: remaining life = (tolerance - fitted now) / rate, the way a corrosion
    rate gives a pipe's remaining life from wall-thickness readings (API 570). None for fewer than two
    scans or scans less than a day apart (a rate per day from one sitting is noise)."""
    t = np.asarray(days, dtype=float)
    y = np.asarray(deviations, dtype=float)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if t.size < 2 or t.max() - t.min() < 1.0:
        return None
    rate, intercept = np.polyfit(t, y, 1)
    latest = float(y[np.argmax(t)])
    now = float(t.max())
    beyond = latest > tolerance
    reaches = None
    if rate > 0 and not beyond:  # the fitted line may lie past the tolerance already: then it is now
        reaches = max(0.0, float((tolerance - (intercept + rate * now)) / rate))
    return WearTrend(
        rate_per_day=float(rate),
        scans=int(t.size),
        span_days=float(now - t.min()),
        latest=latest,
        fitted_latest=float(intercept + rate * now),
        beyond=beyond,
        reaches_in_days=reaches,
    )
