import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Evaluate DICOM question answering on a JSONL question set (the format of "
        "../shared/data/dicom_qa/dev_questions.jsonl): each file goes through the real ingest pipeline and "
        "each question through the real QA service, in a scratch workspace that is rolled back afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path",
            help="JSONL: file (relative to pydicom's test_files or absolute), question, "
            "expected, kind (value|phi).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (no per-question lines)."
        )
        parser.add_argument(
            "--model",
            default=None,
            help="Model (or model:adapter) that phrases answers (default: the QA default model).",
        )
        parser.add_argument(
            "--details", action="store_true", help="With --json: include every question's result."
        )

    def handle(self, *args, **options):
        from medical.evaluation import load_cases, run_qa_evaluation

        path = Path(options["path"])
        if not path.is_file():
            raise CommandError(f"No question file at {path}.")
        try:
            cases = load_cases(path)
        except (ValueError, KeyError) as exc:
            raise CommandError(f"{path} is not a question set: {exc}") from exc
        if not cases:
            raise CommandError(f"{path} holds no questions.")
        from inference.services import ModelNotFound

        try:
            result = run_qa_evaluation(cases, model_name=options["model"])
        except ModelNotFound as exc:
            raise CommandError(
                f"{exc} Register it (import_model) or name one that `/v1/models` lists."
            ) from exc
        details = result.pop("details")
        if options["json"]:
            if options["details"]:
                result["details"] = details
            self.stdout.write(json.dumps(result))
            return
        for item in details:
            mark = "ok  " if item["correct"] else "MISS"
            self.stdout.write(
                f"{mark} {item['id']:<8} [{item.get('phrasing', '-'):<10}] {item.get('latency_ms', 0):>7} ms "
                f"{item.get('question', '')}"
            )
            self.stdout.write(f"       -> {item['answer']}")
        self.stdout.write(json.dumps(result, indent=2))
