"""Failure-mode suggestion quality on labelled technician text (train on one file, report on another)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.failure_modes import (
    DESCRIPTIONS,
    HEAD_WEIGHT,
    TEMPLATE,
    TUNING,
    WEAK_WEIGHT,
    WEIGHTS,
    FailureModeClassifier,
    cross_validate,
    evaluate,
    read_labelled,
    weak_examples,
)


def _data(name: str) -> str:
    return str(Path(settings.SHARED_DATA_DIR) / "failure_modes" / name)


class Command(BaseCommand):
    help = "Top-1, top-3 and macro-F1 of the suggested ISO 14224 failure mode (default: mwo2kg train -> dev)."

    def add_arguments(self, parser):
        parser.add_argument("--train", default=_data("fmc_mwo2kg_train.csv"))
        parser.add_argument("--test", default=_data("fmc_mwo2kg_dev.csv"))
        parser.add_argument(
            "--weak",
            default=_data("excavator_work_orders.csv"),
            help="weakly labelled work orders (FM column mapped onto the ISO modes) for --weak-weight",
        )
        parser.add_argument(
            "--weak-weight",
            type=float,
            default=WEAK_WEIGHT,
            help=f"weight of a weakly labelled example in the fit (default {WEAK_WEIGHT:g}: not used)",
        )
        parser.add_argument(
            "--normalise",
            action="store_true",
            help="embed the text after normalising its shorthand and spelling",
        )
        parser.add_argument(
            "--template",
            default=TEMPLATE,
            help=f"the text is embedded inside this template (default {TEMPLATE!r})",
        )
        parser.add_argument("--no-embeddings", action="store_true", help="n-grams only (no embedding model)")
        parser.add_argument(
            "--tuning-epochs",
            type=int,
            default=None,
            metavar="N",
            help="fine-tune a copy of the embedding model for N epochs on the training text (0: the base "
            f"embeddings as they are; default: the adopted recipe, {(TUNING or {}).get('epochs', 0)})",
        )
        parser.add_argument(
            "--tuning-layers", type=int, default=None, metavar="L", help="tune the top L of the 6 layers"
        )
        parser.add_argument(
            "--tuning-rate", type=float, default=None, metavar="LR", help="the encoder's learning rate"
        )
        parser.add_argument(
            "--head-weight",
            type=float,
            default=HEAD_WEIGHT,
            help=f"share of the tuned encoder's cosine head in the blend (default {HEAD_WEIGHT:g})",
        )
        parser.add_argument(
            "--no-descriptions",
            action="store_true",
            help="leave the ISO 14224 mode descriptions out of the examples"
            + (" (default: in)" if DESCRIPTIONS else " (they are out by default)"),
        )
        neighbours = round(1 - WEIGHTS["regression"] - WEIGHTS["svm"], 4)
        parser.add_argument(
            "--neighbour-weight",
            type=float,
            default=None,
            metavar="W",
            help="share of the nearest-neighbour vote, the regression and SVM (1 - W) / 2 each "
            f"(default: the adopted recipe, {neighbours:g})",
        )
        parser.add_argument(
            "--cv",
            type=int,
            default=0,
            metavar="K",
            help="also report K-fold stratified cross-validation on the training file (how the recipe "
            "was chosen)",
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
        if options["weak_weight"] < 0:
            raise CommandError("--weak-weight is a weight of 0 (not used) or more")
        if "{}" not in options["template"]:
            raise CommandError("--template needs '{}' where the text goes, e.g. 'the machine is {}'")
        epochs = options["tuning_epochs"]
        if epochs is not None and epochs < 0:
            raise CommandError("--tuning-epochs is a number of epochs, 0 (no fine-tuning) or more")
        if not 0 <= options["head_weight"] <= 1:
            raise CommandError("--head-weight is a share between 0 and 1")
        weights = {}
        if options["neighbour_weight"] is not None:
            if not 0 <= options["neighbour_weight"] < 1:
                raise CommandError("--neighbour-weight is a share from 0 up to (not including) 1")
            half = (1 - options["neighbour_weight"]) / 2
            weights = {"regression_weight": half, "svm_weight": half}
        tuning = dict(TUNING or {})
        if epochs is not None:
            tuning["epochs"] = epochs
        if options["tuning_layers"] is not None:
            if not 1 <= options["tuning_layers"] <= 6:
                raise CommandError("--tuning-layers is a number of layers from 1 to 6")
            tuning["layers"] = options["tuning_layers"]
        if options["tuning_rate"] is not None:
            if options["tuning_rate"] <= 0:
                raise CommandError("--tuning-rate is a positive learning rate, e.g. 5e-5")
            tuning["learning_rate"] = options["tuning_rate"]
        tuned = embed is not None and tuning.get("epochs", 0) > 0
        recipe = {
            "normalise": options["normalise"],
            "template": options["template"],
            "tuning": tuning if tuned else None,
            "head_weight": options["head_weight"],
            "descriptions": DESCRIPTIONS and not options["no_descriptions"],
            **weights,
        }
        if tuned:
            from inference.services import embedding_model_dir

            recipe["encoder_dir"] = embedding_model_dir()
        try:
            seeds = [int(s) for s in options["cv_seeds"].split(",") if s.strip()]
        except ValueError:
            raise CommandError("--cv-seeds takes whole numbers separated by commas, e.g. 0,1,2") from None
        try:
            texts, labels = read_labelled(options["train"])
            test_texts, test_labels = read_labelled(options["test"])
            weak = None
            if options["weak_weight"] > 0:
                weak_texts, weak_labels = weak_examples(options["weak"])
                weak = (weak_texts, weak_labels, options["weak_weight"])
            extra = {}
            if weak is not None:
                extra = {"weak_texts": weak[0], "weak_labels": weak[1], "weak_weight": weak[2]}
            started, cpu = time.perf_counter(), time.process_time()
            classifier = FailureModeClassifier(embed, **recipe).fit(texts, labels, **extra)
            fit = {
                "fit_seconds": round(time.perf_counter() - started, 2),
                "fit_cpu_seconds": round(time.process_time() - cpu, 2),
            }
            report = evaluate(classifier, test_texts, test_labels)
            seconds = round(time.perf_counter() - started, 2)
            if options["cv"]:
                runs = [
                    cross_validate(
                        texts,
                        labels,
                        lambda: FailureModeClassifier(embed, **recipe),
                        folds=options["cv"],
                        seed=seed,
                        weak=weak,
                    )
                    for seed in seeds
                ]
                report["cross_validation"] = {
                    "file": options["train"],
                    "runs": runs,
                    **{
                        f"{key}_mean": round(sum(r[key] for r in runs) / len(runs), 4)
                        for key in ("top1", "top3", "macro_f1")
                    },
                }
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        report |= {
            "train": options["train"],
            "test": options["test"],
            "train_examples": len(texts),
            "weak_examples": classifier.weak_examples,
            "method": classifier.method() + " (recipe chosen by cross-validation on the training file)",
            "tuning": recipe["tuning"],
            "head_weight": classifier.head_weight,
            "descriptions": classifier.descriptions,
            "neighbour_weight": round(1 - classifier.regression_weight - classifier.svm_weight, 4),
            **fit,
            "seconds": seconds,
            "load_average_1min": round(os.getloadavg()[0], 2),
        }
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(
                f"top-1 {report['top1']:.3f}  top-3 {report['top3']:.3f}  macro-F1 {report['macro_f1']:.3f} "
                f"on {report['examples']} examples (fit {fit['fit_seconds']} s)"
            )
            if "cross_validation" in report:
                cv = report["cross_validation"]
                self.stdout.write(
                    f"cross-validation on the training file: top-1 {cv['top1_mean']:.3f}  "
                    f"top-3 {cv['top3_mean']:.3f}  macro-F1 {cv['macro_f1_mean']:.3f}"
                )
