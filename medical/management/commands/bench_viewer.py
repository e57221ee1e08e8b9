import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Benchmark the viewer's frames: the worker's first render per frame, a cached frame request "
        "(access decision and trail included), and rendering on every request without a cache."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--repeats", type=int, default=3)

    def handle(self, *args, **options):
        from medical.viewer_benchmark import run_viewer_benchmark

        result = run_viewer_benchmark(repeats=max(1, options["repeats"]))
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        for row in result["files"]:
            self.stdout.write("  ".join(f"{key}={value}" for key, value in row.items()))
        self.stdout.write(result["note"])
