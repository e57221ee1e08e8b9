"""How the vibration fault call holds up away from the CWRU rig: synthetic recordings with a known answer
(`manufacturing.analysis.bearing_signals.synthetic_recording`: random slip, a ringing resonance, noise)
on five bearing geometries, three shaft speeds, two sample rates and two signal-to-noise ratios, each of
the three faults and the healthy bearing, analysed by `manufacturing.analysis.vibration.analyse` with the
geometry and speed given, as an upload would be.

Printed (JSON with --json): the share called right per fault, the confusion counts, the healthy
recordings called faulty (false alarms, over --healthy-seeds more seeds per condition), and every wrong
call with its condition. No database, no model.

usage: .venv/bin/python scripts/vibration_robustness.py [--seeds 1] [--healthy-seeds 5] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from manufacturing.analysis.bearing_signals import FAULTS, synthetic_recording
from manufacturing.analysis.bearings import BEARINGS, BearingGeometry
from manufacturing.analysis.vibration import analyse

GEOMETRIES = {
    "6205 (9 balls)": BEARINGS["6205-2RS"],
    "6203 (8 balls)": BEARINGS["6203-2RS"],
    "6308-size (8 balls)": BearingGeometry(8, 15.875, 65.0, 0.0),
    "7310-size angular (13 balls, 40 deg)": BearingGeometry(13, 17.46, 77.5, 40.0),
    "22216-size (17 rollers, 10 deg)": BearingGeometry(17, 14.0, 112.0, 10.0),
}
SPEEDS = (600, 1797, 3000)
SAMPLE_RATES = (12000, 48000)
SNR_DB = (0.0, -5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="recordings per condition and fault")
    parser.add_argument("--healthy-seeds", type=int, default=5, help="healthy recordings per condition")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    confusion: dict[str, Counter] = {str(fault or "none"): Counter() for fault in FAULTS}
    wrong = []
    for (name, bearing), rpm, rate, snr in itertools.product(
        GEOMETRIES.items(), SPEEDS, SAMPLE_RATES, SNR_DB
    ):
        for fault in FAULTS:
            seeds = args.healthy_seeds if fault is None else args.seeds
            if fault is None and snr != SNR_DB[0]:
                continue  # no defect, no defect-to-noise ratio
            for seed in range(seeds):
                seconds = 3.0 if rate <= 25600 else 2.0
                signal = synthetic_recording(
                    fault, bearing, rpm, rate, seconds=seconds, seed=seed, snr_db=snr
                )
                call = analyse(signal, rate, rpm, bearing).fault
                truth = fault or "none"
                confusion[truth][call] += 1
                if call != truth:
                    wrong.append({"bearing": name, "rpm": rpm, "sample_rate": rate, "snr_db": snr,
                                  "seed": seed, "fault": truth, "called": call})  # fmt: skip
    report = {
        "right": {truth: round(calls[truth] / sum(calls.values()), 3) for truth, calls in confusion.items()},
        "recordings": {truth: sum(calls.values()) for truth, calls in confusion.items()},
        "false_alarm_rate": round(1 - confusion["none"]["none"] / sum(confusion["none"].values()), 4),
        "confusion": {truth: dict(calls) for truth, calls in confusion.items()},
        "wrong": wrong,
        "conditions": {
            "bearings": list(GEOMETRIES),
            "rpm": SPEEDS,
            "sample_rates": SAMPLE_RATES,
            "snr_db": SNR_DB,
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for truth, share in report["right"].items():
        print(
            f"{truth:11s} right {share:6.1%} of {report['recordings'][truth]:4d}  calls {report['confusion'][truth]}"
        )
    print(f"false alarms on healthy bearings: {report['false_alarm_rate']:.2%}")
    for row in wrong:
        print("wrong:", row)
    print(f"{report['seconds']} s")


if __name__ == "__main__":
    main()
