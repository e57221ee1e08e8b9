"""What a 3-D scan costs the worker, by size: a 100 x 60 x 40 mm box sampled at random on its surface
(the reference) and sampled again with 0.01 mm noise (the scan), n points each, registered and measured
as `manufacturing.services.scans.scan_register` does (`icp` with the product's FIT_POINTS, every point
measured); and the request's part, reading an n-point .xyz text file (`read_points`), which the upload
does once and the worker again. Printed (JSON with --json): per size the seconds of each, and the
process's peak memory. No database.

usage: .venv/bin/python scripts/scan_cost.py [--sizes 300000,1000000,2000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from manufacturing.analysis.pointcloud import FIT_POINTS, icp, read_points


def box(n: int, rng: np.random.Generator) -> np.ndarray:
    dims = np.array([100.0, 60.0, 40.0])
    faces, u, v = rng.integers(0, 6, n), rng.random(n), rng.random(n)
    points = np.empty((n, 3))
    for face in range(6):
        on, axis = faces == face, face // 2
        others = [a for a in range(3) if a != axis]
        points[on, axis] = dims[axis] * (face % 2)
        points[on, others[0]], points[on, others[1]] = u[on] * dims[others[0]], v[on] * dims[others[1]]
    return points


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="300000,1000000,2000000")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for n in (int(size) for size in options.sizes.split(",")):
        reference, scan = box(n, rng), box(n, rng) + rng.normal(0.0, 0.01, (n, 3))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "scan.xyz"
            path.write_text("x y z\n" + "\n".join(f"{x:.4f} {y:.4f} {z:.4f}" for x, y, z in scan))
            started = time.perf_counter()
            read_points(path)
            read = time.perf_counter() - started
        started = time.perf_counter()
        result = icp(scan, reference, fit_points=FIT_POINTS).summary(0.5)
        rows.append(
            {
                "points": n,
                "read_xyz_seconds": round(read, 2),
                "register_seconds": round(time.perf_counter() - started, 2),
                "beyond_0_5": result["beyond_tolerance"],
                "rmse": round(result["rmse"], 4),
            }
        )
    report = {"sizes": rows, "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}
    if options.json:
        print(json.dumps(report, indent=2))
    else:
        for row in rows:
            print(row)
        print(f"peak memory {report['peak_memory_mb']} MB")


if __name__ == "__main__":
    main()
