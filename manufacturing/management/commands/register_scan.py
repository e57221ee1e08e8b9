"""Register a 3-D scan of a component onto its reference scan (ICP) and report deviations."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.pointcloud import icp, read_points, unit_mismatch


class Command(BaseCommand):
    help = (
        "ICP-register SCAN onto REFERENCE (.ply or .xyz points; .stl, .obj or .ply meshes, sampled on their "
        "surface) and report per-point deviation and points beyond tolerance."
    )

    def add_arguments(self, parser):
        parser.add_argument("scan")
        parser.add_argument("reference")
        parser.add_argument(
            "--tolerance", type=float, default=0.5, help="in the scans' length unit (e.g. mm)"
        )
        parser.add_argument("--max-iterations", type=int, default=60)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["tolerance"] <= 0:
            raise CommandError("--tolerance must be positive")
        try:
            scan, reference = read_points(options["scan"]), read_points(options["reference"])
        except ValueError as error:
            raise CommandError(str(error)) from None
        mismatch = unit_mismatch(scan, reference)
        if mismatch:
            raise CommandError(mismatch)
        summary = icp(scan, reference, max_iterations=options["max_iterations"]).summary(options["tolerance"])
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
            return
        self.stdout.write(
            f"{summary['points']} points registered in {summary['iterations']} iterations "
            f"(RMS {summary['rmse']:.4g}); {summary['beyond_tolerance']} beyond {summary['tolerance']:g} "
            f"(max deviation {summary['deviation_max']:.4g})"
        )
