"""Failure-mode suggestion quality on labelled technician text (train on one file, report on another)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.failure_modes import (
    FailureModeClassifier,
    cross_validate,
    evaluate,
    read_labelled,
)


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
        parser.add_argument(
            "--cv",
            type=int,
            default=0,
            metavar="K",
            help="also report K-fold cross-validation on the training file (how the weights were chosen)",
        )
        parser.add_argument("--cv-seeds", default="0", help="comma-separated shuffles for --cv, e.g. 0,1,2")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        embed = None
        if not options["no_embeddings"]:
            from inference.services import embed as model_embed

            cache: dict[str, list[float]] = {}

            def embed(texts: list[str]) -> list[list[float]]:  # each text embedded once per run
                missing = [t for t in dict.fromkeys(texts) if t not in cache]
                if missing:
                    cache.update(zip(missing, model_embed(missing), strict=True))
                return [cache[t] for t in texts]

        if options["cv"] == 1 or options["cv"] < 0:
            raise CommandError("--cv needs at least 2 folds (0: no cross-validation)")
        try:
            seeds = [int(s) for s in options["cv_seeds"].split(",") if s.strip()]
        except ValueError:
            raise CommandError("--cv-seeds takes whole numbers separated by commas, e.g. 0,1,2") from None
        try:
            texts, labels = read_labelled(options["train"])
            test_texts, test_labels = read_labelled(options["test"])
            started = time.perf_counter()
            classifier = FailureModeClassifier(embed).fit(texts, labels)
            report = evaluate(classifier, test_texts, test_labels)
            seconds = round(time.perf_counter() - started, 2)
            if options["cv"]:
                runs = [
                    cross_validate(
                        texts, labels, lambda: FailureModeClassifier(embed), folds=options["cv"], seed=seed
                    )
                    for seed in seeds
                ]
                report["cross_validation"] = {
                    "file": options["train"],
                    "runs": runs,
                    "top1_mean": round(sum(r["top1"] for r in runs) / len(runs), 4),
                    "top3_mean": round(sum(r["top3"] for r in runs) / len(runs), 4),
                }
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        report |= {
            "train": options["train"],
            "test": options["test"],
            "train_examples": len(texts),
            "method": classifier.method() + " (weights chosen by cross-validation on the training file)",
            "seconds": seconds,
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(
                f"top-1 {report['top1']:.3f}  top-3 {report['top3']:.3f}  macro-F1 {report['macro_f1']:.3f} "
                f"on {report['examples']} examples"
            )
            if "cross_validation" in report:
                cv = report["cross_validation"]
                self.stdout.write(
                    f"cross-validation on the training file: top-1 {cv['top1_mean']:.3f}  "
                    f"top-3 {cv['top3_mean']:.3f}"
                )
