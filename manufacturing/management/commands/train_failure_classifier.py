"""Fit the assistant's failure-mode classifier once and store it as the next version (joblib under
MODEL_ROOT, sha256 on its row, trailed); suggestions load it, they never fit it."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from manufacturing.services.failure_classifier import (
    failure_classifier_train,
    refit_due,
    refit_reviews,
)

ACTOR = "command:train_failure_classifier"


class Command(BaseCommand):
    help = (
        "Fit the failure-mode classifier on the shared labelled technician text plus the engineers' "
        "accepted or corrected suggestions, and store it as the next version."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--if-due",
            action="store_true",
            help="only when enough reviews came in since the current version (for a periodic job)",
        )
        parser.add_argument(
            "--no-embeddings", action="store_true", help="character n-grams only (no embedding model)"
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if options["if_due"] and not refit_due():
            self.stdout.write(f"no refit due (fewer than {refit_reviews()} new reviews)")
            return
        try:
            row = failure_classifier_train(actor=ACTOR, use_embeddings=not options["no_embeddings"])
        except (ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        report = {
            "version": row.version,
            "path": row.path,
            "sha256": row.sha256,
            "examples": row.examples,
            "reviews_used": row.reviews_used,
        } | row.description
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(
                f"failure-mode classifier v{row.version}: {row.examples} examples "
                f"({row.reviews_used} reviewed), {row.path}"
            )
