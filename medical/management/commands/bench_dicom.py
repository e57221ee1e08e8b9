import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Benchmark DICOM ingest (validation, de-identification, storage, indexing) over the files shipped in "
        "the pydicom wheel, and QA answer latency; in a scratch workspace that is rolled back afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--passes", type=int, default=1, help="Ingest passes (each into its own department)."
        )
        parser.add_argument("--questions", type=int, default=40, help="QA questions to time.")
        parser.add_argument(
            "--model", default=None, help="Model that phrases answers (default MEDICAL_QA_MODEL)."
        )

    def handle(self, *args, **options):
        from medical.benchmark import run_benchmark

        result = run_benchmark(passes=max(1, options["passes"]), questions=max(1, options["questions"]),
                               model_name=options["model"])  # fmt: skip
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key:<28} {value}")
