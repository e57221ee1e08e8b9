"""The bootstrap_demo step (AMLSim into two teams, idempotent) and the finance.aml_cases DataAdapter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings

from audit.models import Event
from audit.sealing import open_texts
from finance import services
from finance.demo import load_demo_finance
from finance.models import Case, ModelVersion, SanctionsListVersion, Transaction
from finance.services.sar import sar_approve, sar_draft
from inference.datasets import get
from tests.finance.conftest import TEAM

pytestmark = pytest.mark.django_db


def _amlsim_slice(folder: Path, transactions: int) -> Path:
    """The first `transactions` rows of the shared AMLSim sample (and all its nodes) in `folder`."""
    source = Path(settings.SHARED_DATA_DIR) / "amlsim"
    lines = (source / "transactions.csv").read_text().splitlines()[: transactions + 1]
    (folder / "transactions.csv").write_text("\n".join(lines) + "\n")
    (folder / "nodes.csv").write_text((source / "nodes.csv").read_text())
    return folder


def test_demo_step_loads_amlsim_into_two_teams_once(tmp_path):
    said = []
    folder = _amlsim_slice(tmp_path, 1000)
    load_demo_finance(said.append, folder=folder, rows=800)
    counts = {team: Transaction.objects.filter(team=team).count() for team in ("aml-eu", "aml-us")}
    assert sum(counts.values()) == 800 and min(counts.values()) > 0
    # AMLSim steps are days: the demo history ends yesterday, not in January 1970
    latest = Transaction.objects.order_by("-ts").values_list("ts", flat=True).first()
    assert dt.timedelta(0) < dt.datetime.now(dt.UTC) - latest < dt.timedelta(days=2)
    # the shared UN list is active, imported once and trailed
    un = SanctionsListVersion.objects.get(name="un", active=True)
    assert un.entries == 683 and Event.objects.filter(action="sanctions_list.import").count() == 1
    load_demo_finance(said.append, folder=folder, rows=800)
    assert Transaction.objects.count() == 800 and SanctionsListVersion.objects.count() == 1
    assert any("skipped" in line for line in said)


def test_demo_trains_its_risk_model_on_the_rows_it_does_not_screen(tmp_path):
    said = []
    load_demo_finance(said.append, folder=_amlsim_slice(tmp_path, 8000), rows=800)
    model = ModelVersion.objects.get(active=True)
    assert model.metrics["train_rows"] == 7200 and model.metrics["holdout_rows"] == 800
    assert model.metrics["source"].endswith("(rows 801-8000)") and model.metrics["train_positives"] > 0
    trained = Event.objects.get(action="finance.model.train")
    assert trained.actor_label == "demo:bootstrap" and model.version in trained.payload_json
    assert Event.objects.filter(action="finance.model.activate", resource_id=str(model.pk)).exists()
    assert any(f"risk model {model.version}" in line for line in said)
    # The alerts were screened with it: the trail of each names the model's version.
    raised = Event.objects.filter(action="alert.raise").first()
    assert raised is not None and model.version in raised.payload_json
    assert f"un@{SanctionsListVersion.objects.get(name='un').version}" in raised.payload_json  # and that list
    load_demo_finance(said.append, folder=tmp_path, rows=800)  # a model is active: none trained again
    assert (
        ModelVersion.objects.count() == 1 and Event.objects.filter(action="finance.model.train").count() == 1
    )


def test_aml_cases_adapter_yields_closed_cases_of_the_users_team(screened, officer, officer2, officer_us):
    case = Case.objects.get()
    sar = sar_draft(actor=officer, case=case, use_model=False)
    sar_approve(actor=officer2, sar=sar)
    services.case_close_prepare(actor=officer, case=case, disposition="sar_filed")
    services.case_close_approve(actor=officer2, case=case)
    adapter = get("finance.aml_cases")
    examples = list(adapter.examples(user=officer, filters={}))
    kinds = {e.source_id.split(":")[0] for e in examples}
    assert kinds == {"sar", "case"}
    sar_example = next(e for e in examples if e.source_id.startswith("sar:"))
    assert sar_example.messages[-1]["content"] == sar.text
    triage = next(e for e in examples if e.source_id.startswith("case:"))
    assert "STRUCTURING" in triage.prompt and triage.completion.strip().startswith("sar_filed")
    assert list(adapter.examples(user=officer_us, filters={})) == []
    assert "1 cases" in adapter.describe_query(user=officer, filters={"team": TEAM})
    with pytest.raises(ValueError):
        list(adapter.examples(user=officer, filters={"colour": "red"}))


def test_sar_narrative_is_sealed_on_the_trail(screened, officer):
    """The narrative names persons: its trail events keep it sealed (audit.sealing), not in clear."""
    sar = sar_draft(actor=officer, case=Case.objects.get(), use_model=False)
    event = Event.objects.get(action="sar.draft", resource_id=str(sar.pk))
    assert "text" not in event.payload and sar.text not in event.payload_json
    assert open_texts(event) == {"text": sar.text}
