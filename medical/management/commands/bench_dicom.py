import json

from django.core.management.base import BaseCommand, CommandError


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
            "--model",
            default=None,
            help="Model (or model:adapter) that phrases answers (default: the QA default model).",
        )

    def handle(self, *args, **options):
        from inference.services import ModelNotFound
        from medical.benchmark import run_benchmark

        try:
            result = run_benchmark(passes=max(1, options["passes"]), questions=max(1, options["questions"]),
                                   model_name=options["model"])  # fmt: skip
        except ModelNotFound as exc:
            raise CommandError(
                f"{exc} Register it (import_model) or name one that `/v1/models` lists."
            ) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            for key, value in result.items():
                self.stdout.write(f"{key:<28} {value}")
