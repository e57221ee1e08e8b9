"""Analyse one vibration waveform from the command line (the same analysis the worker runs)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from manufacturing.analysis import vibration


def _registered_bearings() -> dict[str, vibration.BearingGeometry]:
    from manufacturing.models import BearingGeometry

    try:
        return {
            row.designation: vibration.BearingGeometry(
                row.ball_count, row.ball_diameter_mm, row.pitch_diameter_mm, row.contact_angle_deg
            )
            for row in BearingGeometry.objects.all()
        }
    except DatabaseError:  # no database yet: the built-in catalogue still answers
        return {}


def load_waveform(path: Path) -> np.ndarray:
    if not path.exists():
        raise CommandError(f"{path} does not exist")
    try:
        if path.suffix.lower() == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = np.loadtxt(path, delimiter=",", ndmin=2, comments="#")[:, 0]
    except (ValueError, OSError) as error:
        raise CommandError(f"{path} could not be read (.npy array or CSV, first column): {error}") from None
    return np.asarray(data, dtype=float).ravel()


class Command(BaseCommand):
    help = "Vibration features, ISO 10816-3 zone, envelope analysis and bearing fault call of a waveform."

    def add_arguments(self, parser):
        parser.add_argument("file", help=".npy array or CSV (first column) of samples")
        parser.add_argument("--sample-rate", type=float, required=True, help="samples per second")
        parser.add_argument("--rpm", type=float, required=True, help="shaft speed during the recording")
        parser.add_argument(
            "--bearing",
            default="",
            help="a registered bearing (e.g. 6205-2RS) or balls=9,ball_d=0.3126,pitch_d=1.537,angle=0",
        )
        parser.add_argument("--units", default="g", help="g, m/s2 or mm/s")
        parser.add_argument(
            "--iso-group", default="group2", help="group1 (300 kW-50 MW) or group2 (15-300 kW)"
        )
        parser.add_argument("--foundation", default="rigid", help="rigid or flexible")
        parser.add_argument("--zone-limits", default="", help="A/B,B/C,C/D in mm/s (default: ISO table)")
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
        parser.add_argument("--spectra", action="store_true", help="include the spectra in the JSON")

    def handle(self, *args, **options):
        signal = load_waveform(Path(options["file"]))
        try:
            bearing = (
                vibration.bearing_parse(options["bearing"], _registered_bearings())
                if options["bearing"]
                else None
            )
            limits = [float(v) for v in options["zone_limits"].split(",")] if options["zone_limits"] else None
            result = vibration.analyse(
                signal,
                options["sample_rate"],
                options["rpm"],
                bearing,
                options["units"],
                options["iso_group"],
                options["foundation"],
                limits,
            ).to_dict()
        except ValueError as error:
            raise CommandError(str(error)) from None
        if not options["spectra"]:
            result["spectrum"] = {"points": len(result["spectrum"].get("freq_hz", []))}
            result["envelope"] = {
                k: v for k, v in result["envelope"].items() if k not in ("freq_hz", "amplitude")
            }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        self.stdout.write(
            f"RMS velocity {result['rms_velocity']:.2f} mm/s (10-1000 Hz): zone {result['zone']} "
            f"({result['zone_meaning']}); peak {result['peak']:.3g} {result['units']}, "
            f"crest {result['crest_factor']:.2f}, kurtosis {result['kurtosis']:.2f}"
        )
        for name, hz in result["fault_frequencies"].items():
            self.stdout.write(f"  {name.upper():5s} {hz:8.2f} Hz")
        self.stdout.write(
            f"fault call: {result['fault'] or 'n/a'} (confidence {result['fault_confidence']:.2f})"
        )
        for line in result["evidence"]:
            self.stdout.write(f"  - {line}")
