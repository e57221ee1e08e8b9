"""eval_screening, eval_name_screening and train_screening_model on small slices of the shared data."""

import json
import shutil

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.models import Event
from finance.models import ModelVersion
from finance.screening.risk_model import RiskModel

SHARED = settings.SHARED_DATA_DIR


@pytest.fixture
def amlsim_folder(tmp_path):
    with open(SHARED / "amlsim" / "transactions.csv") as f:
        head = "".join(line for _, line in zip(range(8001), f, strict=False))
    (tmp_path / "transactions.csv").write_text(head)
    shutil.copy(SHARED / "amlsim" / "nodes.csv", tmp_path / "nodes.csv")
    return tmp_path


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_eval_screening_reports_both_operating_points(amlsim_folder, capsys):
    call_command("eval_screening", str(amlsim_folder), "--format", "amlsim", "--rounds", "8", "--json")
    out = _json(capsys)
    assert out["test"]["positives"] > 0 and out["train"]["rows"] + out["test"]["rows"] == 8000
    for key in ("rules_only", "rules_model"):
        assert {"precision", "recall", "f1", "pr_auc", "fp"} <= set(out[key])
        assert 0 <= out[key]["f1"] <= 1
    assert out["equal_recall"]["fp_rules_model"] <= out["equal_recall"]["fp_rules"]
    assert out["fp_reduction_at_equal_recall"] is None or 0 <= out["fp_reduction_at_equal_recall"] <= 1
    assert out["model_version"].startswith("rm-")


def test_eval_screening_refuses_bad_input(tmp_path):
    # with the system checks, as from the command line (the commands no longer skip them)
    with pytest.raises(CommandError, match="cannot read"):
        call_command(
            "eval_screening", str(tmp_path / "missing.csv"), "--format", "amlworld", skip_checks=False
        )
    with pytest.raises(CommandError):
        call_command("eval_name_screening", "--list", str(tmp_path / "missing.csv"), skip_checks=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("Timestamp,From Bank\n1,2\n")
    with pytest.raises(CommandError, match="row 1 header"):
        call_command("eval_screening", str(bad), "--format", "amlworld")


def test_eval_name_screening_on_a_slice(tmp_path, capsys):
    for name, rows in (
        ("un_list.csv", 150),
        ("un_queries_with_typos.csv", 150),
        ("negatives_global.csv", 200),
    ):
        with open(SHARED / "sanctions" / name, encoding="utf-8") as f:
            (tmp_path / name).write_text("".join(line for _, line in zip(range(rows + 1), f, strict=False)))
    call_command(
        "eval_name_screening",
        "--list",
        str(tmp_path / "un_list.csv"),
        "--queries",
        str(tmp_path / "un_queries_with_typos.csv"),
        "--negatives",
        str(tmp_path / "negatives_global.csv"),
        "--json",
    )
    out = _json(capsys)
    assert out["list_entries"] == out["queries"] == 150 and out["negatives"] == 200
    assert out["recall"] >= 0.98 and out["fpr"] <= 0.01 and out["fpr_shared_surname"] <= 0.02
    assert out["queries_per_s"] > 0


@pytest.mark.django_db
def test_train_screening_model_stores_a_trailed_version(amlsim_folder, capsys):
    args = [str(amlsim_folder), "--format", "amlsim", "--rounds", "5", "--train-fraction", "0.8", "--json"]
    call_command("train_screening_model", *args, "--activate")
    out = _json(capsys)
    row = ModelVersion.objects.get(version=out["version"])
    assert row.active and out["created"] and "holdout_pr_auc" in row.metrics
    assert RiskModel.from_bytes(row.blob).version == row.version
    assert list(
        Event.objects.filter(resource_type="finance.modelversion", resource_id=str(row.pk)).values_list(
            "action", flat=True
        )
    ) == ["finance.model.train", "finance.model.activate"]
    call_command("train_screening_model", *args)  # same data and settings: same version, no duplicate
    assert _json(capsys)["created"] is False and ModelVersion.objects.count() == 1
