"""Rules only versus rules + model on labelled data, temporal split (JSON with --json).

    python manage.py eval_screening ../shared/data/amlsim --format amlsim --json
    python manage.py eval_screening HI-Small_Trans.csv --format amlworld --json

The method (split, operating points, PR-AUC, fp_reduction_at_equal_recall) is described in
``finance.screening.evaluation``. Nothing is written to the database.
"""

import json

from django.core.management.base import BaseCommand, CommandError

from finance.screening.evaluation import evaluate
from finance.screening.formats import FormatError, read_amlsim, read_amlworld


def read_table(path: str, fmt: str):
    try:
        if fmt == "amlsim":
            return read_amlsim(path)
        return read_amlworld(path)
    except FormatError as e:
        raise CommandError(f"{path}: {e}") from e
    except OSError as e:
        raise CommandError(f"cannot read {path}: {e}") from e


class Command(BaseCommand):
    help = "Evaluate screening (rules only vs rules + model) with a temporal split."

    def add_arguments(self, parser):
        parser.add_argument("path", help="AMLworld CSV file or AMLSim folder")
        parser.add_argument("--format", choices=["amlworld", "amlsim"], required=True)
        parser.add_argument("--train-fraction", type=float, default=0.7)
        parser.add_argument("--rounds", type=int, default=200, help="boosting rounds")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        if not 0.1 <= options["train_fraction"] <= 0.95:
            raise CommandError("--train-fraction must be between 0.1 and 0.95")
        table = read_table(options["path"], options["format"])
        try:
            result = evaluate(
                table, train_fraction=options["train_fraction"], num_boost_round=options["rounds"]
            )
        except ValueError as e:
            raise CommandError(str(e)) from e
        result["path"] = str(options["path"])
        result["format"] = options["format"]
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            r, m = result["rules_only"], result["rules_model"]
            self.stdout.write(
                f"rules only P {r['precision']} R {r['recall']} F1 {r['f1']} | rules+model P {m['precision']} "
                f"R {m['recall']} F1 {m['f1']} PR-AUC {m['pr_auc']} | FP reduction at equal recall "
                f"{result['fp_reduction_at_equal_recall']}"
            )
