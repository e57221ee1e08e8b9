"""Stand-in C-MAPSS subsets the size of FD002 / FD003 / FD004, made from FD001, to measure what the
prognostics recipe costs on them (only FD001 is in ../shared/data/cmapss and this host has no network).

Not an accuracy benchmark: the engines are FD001's, re-noised and stretched in time, so their RMSE says
nothing about the real subsets. What they do reproduce is what drives the cost: the number of engines and
rows (FD002 260 training engines / 53,759 rows, FD003 100 / 24,720, FD004 249 / 61,249, against FD001's
100 / 20,631), the six operating regimes flown at random cycle by cycle (FD002 / FD004: each regime has
its own sensor levels and spreads, far apart, so the per-regime normalisation has real work to do) and
the test engines' truncated histories with their true RUL.

    python scripts/cmapss_standin.py --like FD004 --out /tmp/standin
    python manage.py eval_prognostics --train /tmp/standin/train_FD004.txt \
        --test /tmp/standin/test_FD004.txt --rul /tmp/standin/RUL_FD004.txt --json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from manufacturing.analysis.prognostics import CMAPSS_REGIMES as REGIMES  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmapss"
# training engines, test engines, regimes and the mean life stretch that gives the real row counts
LIKE = {
    "FD002": (260, 259, 6, 1.0),
    "FD003": (100, 100, 1, 1.2),
    "FD004": (249, 248, 6, 1.19),
}


def _engines(data: np.ndarray, count: int, stretch: float, rng) -> list[np.ndarray]:
    """`count` engines from FD001's: engine k is FD001 engine k mod n, beyond the first n stretched in
    time (uniform around `stretch`, +-15%) and re-noised (half the sensor's cycle-to-cycle spread)."""
    units = np.unique(data[:, 0]).astype(int)
    step = np.std(np.diff(data[:, 5:], axis=0), axis=0) / np.sqrt(2)
    out = []
    for k in range(count):
        rows = data[data[:, 0] == units[k % units.size]]
        factor = stretch if k < units.size else stretch * rng.uniform(0.85, 1.15)
        n = max(2, int(round(rows.shape[0] * factor)))
        position = np.linspace(0, rows.shape[0] - 1, n)
        sensors = np.column_stack(
            [np.interp(position, np.arange(rows.shape[0]), rows[:, 5 + j]) for j in range(21)]
        )
        if k >= units.size or factor != 1.0:
            sensors = sensors + rng.normal(0, 0.5, sensors.shape) * step
        out.append(sensors)
    return out


def _fly(engines: list[np.ndarray], regimes: int, first_unit: int, rng, base, scale, centre) -> np.ndarray:
    """C-MAPSS rows: each cycle flown in a random regime (its settings with a little noise), the
    sensors moved to that regime's level and spread."""
    rows = []
    for k, sensors in enumerate(engines):
        n = sensors.shape[0]
        regime = rng.integers(0, regimes, n) if regimes > 1 else np.zeros(n, int)
        settings = REGIMES[regime] + rng.normal(0, [0.002, 0.0003, 0], (n, 3))
        if regimes == 1:
            settings = rng.normal(0, [0.002, 0.0003, 0], (n, 3)) + [0, 0, 100]
        moved = base[regime] + (sensors - centre) * scale[regime]
        rows.append(np.column_stack([np.full(n, first_unit + k), np.arange(1, n + 1), settings, moved]))
    return np.vstack(rows)


def standin(like: str, source: Path = SHARED, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    train_count, test_count, regimes, stretch = LIKE[like]
    rng = np.random.default_rng(seed)
    train = np.loadtxt(source / "train_FD001.txt")
    test = np.loadtxt(source / "test_FD001.txt")
    rul = np.loadtxt(source / "RUL_FD001.txt")
    centre = train[:, 5:].mean(axis=0)
    base = centre * rng.uniform(0.6, 1.4, (len(REGIMES), 21)) if regimes > 1 else centre[None].repeat(6, 0)
    scale = rng.uniform(0.5, 2.0, (len(REGIMES), 21)) if regimes > 1 else np.ones((6, 21))
    train_rows = _fly(_engines(train, train_count, stretch, rng), regimes, 1, rng, base, scale, centre)
    # test engines: FD001's truncated histories, stretched alike; the true RUL stretched with them
    test_engines, truth = [], []
    units = np.unique(test[:, 0]).astype(int)
    for k in range(test_count):
        i = k % units.size
        rows = test[test[:, 0] == units[i]]
        factor = stretch if k < units.size else stretch * rng.uniform(0.85, 1.15)
        test_engines += _engines(rows, 1, factor, rng) if factor != 1.0 else [rows[:, 5:]]
        truth.append(round(rul[i] * factor))
    test_rows = _fly(test_engines, regimes, 1, rng, base, scale, centre)
    return train_rows, test_rows, np.array(truth, float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--like", choices=sorted(LIKE), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, test, rul = standin(args.like, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    fmt = ["%d", "%d", "%.4f", "%.4f", "%.1f"] + ["%.4f"] * 21
    np.savetxt(args.out / f"train_{args.like}.txt", train, fmt=fmt)
    np.savetxt(args.out / f"test_{args.like}.txt", test, fmt=fmt)
    np.savetxt(args.out / f"RUL_{args.like}.txt", rul, fmt="%d")
    print(
        f"{args.like} stand-in: {len(np.unique(train[:, 0]))} training engines / {train.shape[0]} rows, "
        f"{len(np.unique(test[:, 0]))} test engines / {test.shape[0]} rows -> {args.out}"
    )


if __name__ == "__main__":
    main()
