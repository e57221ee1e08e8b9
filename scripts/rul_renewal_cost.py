"""What renewing a remaining-life prediction costs a worker (`services.prognostics.rul_renew`): train the
default recipe on FD001's training engines, store it as the product does (`RulModel.to_bytes`), then time
loading it back (once per worker process) and renewing one unit's prediction (every renewal): `predict`,
which since session 17 runs the models on the unit's last row only, beside `predict_rows` over its whole
history, what a renewal cost before.

usage: .venv/bin/python scripts/rul_renewal_cost.py [--unit 34]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unit", type=int, default=34, help="FD001 test unit whose history is predicted")
    args = parser.parse_args()
    import django

    django.setup()
    from django.conf import settings

    from manufacturing.analysis.prognostics import RulConfig, RulModel, read_cmapss

    cmapss = Path(settings.SHARED_DATA_DIR) / "cmapss"
    model = RulModel(RulConfig()).fit(read_cmapss(cmapss / "train_FD001.txt"), family="turbofan")
    blob = model.to_bytes()
    test = read_cmapss(cmapss / "test_FD001.txt")
    unit = test[test[:, 0] == args.unit]
    started = time.perf_counter()
    loaded = RulModel.from_bytes(blob)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    loaded.predict(unit)
    first_s = time.perf_counter() - started
    times, whole = [], []
    for _ in range(5):
        started = time.perf_counter()
        loaded.predict(unit)
        times.append(time.perf_counter() - started)
        started = time.perf_counter()
        loaded.predict_rows(unit)
        whole.append(time.perf_counter() - started)
    print(json.dumps({
        "blob_mb": round(len(blob) / 1e6, 2),
        "load_seconds": round(load_s, 3),
        "first_predict_seconds": round(first_s, 3),
        "predict_ms_median": round(float(np.median(times)) * 1000, 1),
        "whole_history_ms_median": round(float(np.median(whole)) * 1000, 1),
        "cycles": int(len(unit)),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
