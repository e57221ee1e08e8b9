"""Top-1 / top-3 / macro-F1 (means over the shuffles given, then each shuffle's top-1 and top-3) of the
recipes and blends saved by scripts/failure_modes_tuning_cv.py.

usage: .venv/bin/python scripts/failure_modes_tuning_blend.py A.npz [B.npz ...]
"""

import sys

import numpy as np
from sklearn.metrics import f1_score


def main(files: list[str]) -> None:
    runs: dict[int, dict[str, np.ndarray]] = {}
    for name in files:
        saved = np.load(name, allow_pickle=True)  # our own files: labels are stored as objects
        labels, classes = saved["labels"], saved["classes"]
        for key in saved.files:
            if key[0].isdigit() and key.split("_", 1)[1] in ("base", "tuned", "head"):
                seed, part = key.split("_", 1)
                runs.setdefault(int(seed), {})[part] = saved[key]

    def score(p):
        ranked = classes[np.argsort(-p, axis=1)[:, :3]]
        top3 = np.mean([t in r for t, r in zip(labels, ranked, strict=True)])
        return np.mean(ranked[:, 0] == labels), top3, f1_score(labels, ranked[:, 0], average="macro")

    blends = [("base", (1, 0, 0)), ("tuned", (0, 1, 0)), ("head", (0, 0, 1))]
    blends += [(f"base {1 - b:.2f} + head {b:.2f}", (1 - b, 0, b)) for b in (0.2, 0.3, 0.4, 0.5, 0.6)]
    blends += [(f"base {1 - b:.2f} + tuned {b:.2f}", (1 - b, b, 0)) for b in (0.3, 0.5)]
    blends += [
        (f"base/tuned/head {a}/{b}/{c}", (a, b, c)) for a, b, c in ((0.4, 0.3, 0.3), (0.5, 0.25, 0.25))
    ]
    for name, (a, b, c) in blends:
        per = [score(a * r["base"] + b * r["tuned"] + c * r["head"]) for _, r in sorted(runs.items())]
        mean = np.mean(per, axis=0)
        print(
            f"{mean[0]:.4f} {mean[1]:.4f} {mean[2]:.4f}  {name:28s} top-1 per shuffle "
            + " ".join(f"{p[0]:.3f}" for p in per)
            + "  top-3 "
            + " ".join(f"{p[1]:.3f}" for p in per)
        )
    print("shuffles", sorted(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
