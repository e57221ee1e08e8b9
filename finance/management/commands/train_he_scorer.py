"""Fit the linear scorer that /api/finance/he/score/ evaluates on encrypted features."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from finance.he import services, training
from finance.he.scoring import HeInputError


class Command(BaseCommand):
    help = (
        "Fit the encrypted-scoring model (logistic regression, logit as a linear score) on AMLSim "
        "(default: the shared sample) or on a CSV of numeric features with a 0/1 label column."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--amlsim", type=Path, default=None, help="an AMLSim folder (nodes.csv, transactions.csv)"
        )
        parser.add_argument(
            "--csv", type=Path, default=None, help="numeric feature columns + the label column"
        )
        parser.add_argument("--label", default="label", help="the CSV's label column")
        parser.add_argument("--output", type=Path, default=None, help=f"default: {services.scorer_path()}")

    def handle(self, *args, **options):
        try:
            if options["csv"]:
                features, labels, names = training.csv_features(options["csv"], label=options["label"])
                source = str(options["csv"])
            else:
                folder = options["amlsim"] or Path(settings.SHARED_DATA_DIR) / "amlsim"
                if not (folder / "transactions.csv").is_file():
                    raise CommandError(f"{folder}: no AMLSim transactions.csv there (give --amlsim or --csv)")
                features, labels = training.amlsim_features(folder)
                names, source = training.FEATURE_NAMES, f"AMLSim {folder}"
            scorer = training.fit_linear_scorer(
                features, labels, names, description=f"logistic regression on {len(labels)} rows of {source}"
            )
        except HeInputError as error:
            raise CommandError(str(error)) from error
        output = options["output"] or services.scorer_path()
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(scorer.to_json())
        self.stdout.write(
            f"Encrypted-scoring model {scorer.version} ({', '.join(names)}) written to {output}"
        )
