"""How 3-D scan registration holds up away from a scan that arrives nearly aligned: an asymmetric block
(a 4 x 2 x 1 box with a boss at one corner, the shape of `tests/manufacturing/test_analysis_pointcloud.py`)
scanned on another sample of its surface, with 0.005 noise, turned at random (scipy's uniform random
rotations, seeded) and moved far off, registered by `manufacturing.analysis.pointcloud.icp`.

Cases:
- whole: the whole surface (3,000 points against 3,000);
- one side: the 65% of a 6,000-point sample seen from a random viewpoint. Where the side seen fits the
  reference in another pose as well as in the true one (the boss out of view), no method can tell: such a
  case counts as "ambiguous" when the pose found fits at least as well as the truth (RMS within 5%).
- density: an 80 x 50 x 6 mm plate with a boss whose sides are sampled about ten times as densely as its
  top and bottom (as a scanner sees faces turned towards it), a perfect scan on another sample with a
  1.5 mm dent: the points beyond 0.5 mm, in the dent and elsewhere.

Printed (JSON with --json): registered / ambiguous / missed per case, the density counts, and the seconds.
No database. About 2-4 minutes on 2 cores.

usage: .venv/bin/python scripts/scan_robustness.py [--seeds 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from manufacturing.analysis import pointcloud


def block(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.uniform([0, 0, 0], [4, 2, 1], size=(n, 3))
    face = rng.integers(0, 3, n)
    points[np.arange(n), face] = np.where(rng.random(n) < 0.5, 0.0, np.array([4.0, 2.0, 1.0])[face])
    boss = rng.uniform([0.5, 0.5, 1.0], [1.0, 1.0, 1.5], size=(n // 10, 3))
    return np.vstack([points, boss])


def rms_at_truth(truth: np.ndarray, reference: np.ndarray) -> float:
    tree = cKDTree(reference)
    deviations, _ = pointcloud._deviations(truth, reference, tree, pointcloud._surface(reference, tree), k=16)
    return float(np.sqrt(np.mean(deviations**2)))


def registration_case(seed: int, partial: bool) -> str:
    rng = np.random.default_rng(100 + seed)
    if partial:
        reference, truth = block(6000, seed), block(6000, seed + 1000)
        view = rng.normal(size=3)
        height = (truth - truth.mean(axis=0)) @ (view / np.linalg.norm(view))
        truth = truth[height > np.quantile(height, 0.35)]
    else:
        reference, truth = block(3000, seed), block(3000, seed + 1000)
    truth = truth + rng.normal(0, 0.005, truth.shape)
    scan = truth @ Rotation.random(random_state=seed).as_matrix().T + rng.uniform(-50, 50, 3)
    result = pointcloud.icp(scan, reference)
    if np.abs(scan @ result.rotation.T + result.translation - truth).max() < 0.05:
        return "registered"
    return "ambiguous" if result.rmse <= 1.05 * rms_at_truth(truth, reference) else "missed"


def density_case() -> dict:
    rng = np.random.default_rng(0)

    def box_faces(low, high, n):  # each face drawn as often as the others, whatever its size
        low, high = np.array(low, float), np.array(high, float)
        points = rng.uniform(low, high, size=(n, 3))
        face = rng.integers(0, 3, n)
        points[np.arange(n), face] = np.where(rng.random(n) < 0.5, low[face], high[face])
        return points

    def part():
        boss = box_faces([10, 10, 6], [25, 25, 20], 3000)
        return np.vstack([box_faces([0, 0, 0], [80, 50, 6], 20000), boss[boss[:, 2] > 6.001]])

    reference, scan = part(), part()
    dent = (np.abs(scan[:, 2] - 6) < 0.01) & ((scan[:, 0] - 60) ** 2 + (scan[:, 1] - 30) ** 2 < 36)
    scan[dent, 2] -= 1.5
    scan = scan + rng.normal(0, 0.02, scan.shape)
    turn = Rotation.from_euler("xyz", [160, -35, 80], degrees=True).as_matrix()
    result = pointcloud.icp(scan @ turn.T + [120, -40, 300], reference, fit_points=20000)
    beyond = result.deviations > 0.5
    return {
        "points": int(len(scan)),
        "dent_points": int(dent.sum()),
        "beyond_in_dent": int(beyond[dent].sum()),
        "beyond_elsewhere": int(beyond[~dent].sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=60)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    started = time.perf_counter()
    report: dict = {}
    for name, partial in (("whole", False), ("one_side", True)):
        outcomes = [registration_case(seed, partial) for seed in range(options.seeds)]
        report[name] = {kind: outcomes.count(kind) for kind in ("registered", "ambiguous", "missed")}
    report["density"] = density_case()
    report["seconds"] = round(time.perf_counter() - started, 1)
    if options.json:
        print(json.dumps(report, indent=2))
        return
    for name in ("whole", "one_side"):
        counts = report[name]
        print(
            f"{name}: {counts['registered']} registered, {counts['ambiguous']} ambiguous, {counts['missed']} missed"
        )
    print(f"density: {report['density']}")
    print(f"{report['seconds']} s")


if __name__ == "__main__":
    main()
