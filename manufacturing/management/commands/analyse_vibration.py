"""Analyse one vibration waveform from the command line (the same analysis the worker runs)."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from manufacturing.analysis import vibration, waveform_files


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


def load_waveform(path: Path, channel: str = "") -> waveform_files.Waveform:
    if not path.exists():
        raise CommandError(f"{path} does not exist")
    try:
        return waveform_files.read_waveform(path.name, path.read_bytes(), channel)
    except (ValueError, OSError) as error:
        raise CommandError(str(error)) from None


class Command(BaseCommand):
    help = "Vibration features, ISO 10816-3 zone, envelope analysis and bearing fault call of a waveform."

    def add_arguments(self, parser):
        parser.add_argument(
            "file",
            help=".npy array, CSV (first column that is not time, or --channel) or MATLAB .mat of samples",
        )
        parser.add_argument(
            "--sample-rate",
            type=float,
            default=None,
            help="samples per second (required unless the CSV has a time column)",
        )
        parser.add_argument(
            "--rpm",
            type=float,
            default=None,
            help="shaft speed during the recording (required unless the .mat file has an RPM variable)",
        )
        parser.add_argument(
            "--channel",
            default="",
            help="the column (CSV name or number, .npy number) or .mat variable (or DE, FE, BA) to read",
        )
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
        wave = load_waveform(Path(options["file"]), options["channel"])
        try:
            sample_rate = waveform_files.sample_rate_of(wave, options["sample_rate"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        rpm = options["rpm"] or wave.rpm
        if not sample_rate:
            raise CommandError("--sample-rate is required: the file has no time column to take it from")
        if not rpm:
            raise CommandError("--rpm is required: the file carries no shaft speed")
        try:
            bearing = (
                vibration.bearing_parse(options["bearing"], _registered_bearings())
                if options["bearing"]
                else None
            )
            limits = [float(v) for v in options["zone_limits"].split(",")] if options["zone_limits"] else None
            result = vibration.analyse(
                wave.signal,
                sample_rate,
                rpm,
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
        result["input"] = {
            "channel": wave.channel,
            "sample_rate": sample_rate,
            "rpm": rpm,
            "samples": int(wave.signal.size),
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
