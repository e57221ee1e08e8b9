"""Failure-mode suggestion quality on labelled technician text (train on one file, report on another)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.failure_modes import FailureModeClassifier, evaluate, read_labelled


def _data(name: str) -> str:
    return str(Path(settings.SHARED_DATA_DIR) / "failure_modes" / name)


class Command(BaseCommand):
    help = "Top-1, top-3 and macro-F1 of the suggested ISO 14224 failure mode (default: mwo2kg train -> dev)."

    def add_arguments(self, parser):
        parser.add_argument("--train", default=_data("fmc_mwo2kg_train.csv"))
        parser.add_argument("--test", default=_data("fmc_mwo2kg_dev.csv"))
        parser.add_argument(
            "--no-embeddings", action="store_true", help="character n-grams only (no embedding model)"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        embed = None
        if not options["no_embeddings"]:
            from inference.services import embed
        try:
            texts, labels = read_labelled(options["train"])
            test_texts, test_labels = read_labelled(options["test"])
            started = time.perf_counter()
            classifier = FailureModeClassifier(embed).fit(texts, labels)
            report = evaluate(classifier, test_texts, test_labels)
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        report |= {
            "train": options["train"],
            "test": options["test"],
            "train_examples": len(texts),
            "method": (
                f"{1 - classifier.regression_weight:g} x {classifier.neighbours}-nearest-neighbour vote over "
                f"all-MiniLM-L6-v2 embeddings + {classifier.regression_weight:g} x LR on embeddings and "
                "char n-grams (weights chosen by cross-validation on the training file)"
            )
            if embed
            else "LR on char n-grams",
            "seconds": round(time.perf_counter() - started, 2),
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(
                f"top-1 {report['top1']:.3f}  top-3 {report['top3']:.3f}  macro-F1 {report['macro_f1']:.3f} "
                f"on {report['examples']} examples"
            )
