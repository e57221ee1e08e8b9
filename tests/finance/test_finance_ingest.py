"""Ingestion: batch API all-or-nothing with a per-row report, real-time decisions, file import, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from audit.models import Event
from finance.models import Alert, Case, Transaction
from tests.finance.conftest import TEAM, structuring_rows

pytestmark = pytest.mark.django_db


def test_batch_api_screens_and_alerts_with_evidence_on_the_trail(client, officer):
    client.force_login(officer)
    response = client.post(
        "/api/finance/transactions/batch/",
        {"transactions": structuring_rows()},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["transactions"] == 4 and body["alerts"] == 1 and body["cases"] == 1
    decisions = {d["tx_ref"]: d["decision"] for d in body["decisions"]}
    assert decisions["S2"] == "review" and decisions["S0"] == decisions["S-ok"] == "approve"
    alert = Alert.objects.get()
    assert alert.team == TEAM and alert.transaction.tx_ref == "S2"
    assert [h["code"] for h in alert.evidence["rules"]] == ["STRUCTURING"]
    assert alert.scenario_versions.get().code == "STRUCTURING"
    event = Event.objects.get(action="alert.raise", resource_id=str(alert.pk))
    payload = json.loads(event.payload_json)
    assert payload["evidence"]["rules"][0]["version"] == 1 and payload["evidence"]["tx"]["tx_ref"] == "S2"
    assert payload["evidence"] == alert.evidence and alert.trail_event == event.sequence
    assert Event.objects.filter(action="transaction.screen", outcome="succeeded").count() == 1


def test_batch_is_all_or_nothing_with_a_row_report(client, officer):
    client.force_login(officer)
    rows = structuring_rows()
    rows[1]["amount_paid"] = "lots"
    rows[3]["ts"] = "yesterday"
    rows.append(dict(rows[0]))  # duplicate tx_ref
    response = client.post(
        "/api/finance/transactions/batch/", {"transactions": rows}, content_type="application/json"
    )
    assert response.status_code == 400
    errors = {(e["row"], e["field"]) for e in response.json()["errors"]}
    assert {(1, "amount_paid"), (3, "ts"), (4, "tx_ref")} <= errors
    assert Transaction.objects.count() == 0 and Alert.objects.count() == 0
    # resubmitting rows already imported is refused per row, nothing written twice
    assert (
        client.post(
            "/api/finance/transactions/batch/",
            {"transactions": structuring_rows()},
            content_type="application/json",
        ).status_code
        == 201
    )
    again = client.post(
        "/api/finance/transactions/batch/",
        {"transactions": structuring_rows()},
        content_type="application/json",
    )
    assert again.status_code == 400 and "already imported" in again.json()["errors"][0]["message"]
    assert Transaction.objects.count() == 4


def test_realtime_endpoint_decides_synchronously(client, officer):
    client.force_login(officer)
    rows = structuring_rows()
    client.post(
        "/api/finance/transactions/batch/", {"transactions": rows[:2]}, content_type="application/json"
    )
    third = client.post(
        "/api/finance/transactions/screen/", {"transaction": rows[2]}, content_type="application/json"
    )
    assert third.status_code == 200, third.content
    assert third.json()["decision"] == "review" and third.json()["hits"] == ["STRUCTURING"]
    ok = client.post(
        "/api/finance/transactions/screen/", {"transaction": rows[3]}, content_type="application/json"
    )
    assert ok.json()["decision"] == "approve" and ok.json()["alert"] is None
    risky = structuring_rows(prefix="Z", account="ACC-Z", start=1_700_100_000)[:3]
    risky[2]["dst_country"] = "KP"  # FATF call for action: structuring + high-risk jurisdiction
    client.post(
        "/api/finance/transactions/batch/", {"transactions": risky[:2]}, content_type="application/json"
    )
    held = client.post(
        "/api/finance/transactions/screen/", {"transaction": risky[2]}, content_type="application/json"
    )
    assert held.json()["decision"] == "hold", held.json()
    event = Event.objects.filter(action="transaction.screen", resource_id=str(held.json()["id"])).get()
    assert json.loads(event.payload_json)["decisions"][0]["decision"] == "hold"


def test_replay_alert_identical_and_tamper_detected(screened, capsys):
    alert = Alert.objects.get()
    call_command("replay_alert", str(alert.pk))
    assert "identical" in capsys.readouterr().out
    from finance.services import alert_replay

    assert alert_replay(alert_id=alert.pk).identical
    # an event edited behind the trail's back no longer replays as identical
    event = Event.objects.get(action="alert.raise")
    payload = json.loads(event.payload_json)
    payload["evidence"]["risk"] = 0.1
    with connection.cursor() as cursor:  # behind the trail service's back, as an intruder would
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")  # past the append-only trigger
        cursor.execute(
            f"UPDATE {Event._meta.db_table} SET payload_json = %s WHERE id = %s",  # noqa: S608
            [json.dumps(payload), event.pk],
        )
    result = alert_replay(alert_id=alert.pk)
    assert not result.identical and any(d.startswith("risk") for d in result.differences)


def test_import_transactions_amlsim_slice(tmp_path, capsys):
    source = Path(settings.SHARED_DATA_DIR) / "amlsim"
    lines = (source / "transactions.csv").read_text().splitlines()[:1501]
    (tmp_path / "transactions.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "nodes.csv").write_text((source / "nodes.csv").read_text())
    call_command("import_transactions", str(tmp_path), "--format", "amlsim", "--team", TEAM)
    out = capsys.readouterr().out
    assert Transaction.objects.filter(team=TEAM).count() == 1500
    assert "1500 transactions" in out and "%" in out
    assert Case.objects.filter(team=TEAM).count() == Alert.objects.values("case").distinct().count()


def test_import_transactions_bad_file_writes_nothing(tmp_path):
    from django.core.management.base import CommandError

    path = tmp_path / "bad.csv"
    path.write_text(
        "Timestamp,From Bank,Account,To Bank,Account,Amount Received,Receiving Currency,Amount Paid,"
        "Payment Currency,Payment Format,Is Laundering\n"
        "2022/09/01 00:20,10,A1,10,B1,100,US Dollar,100,US Dollar,Wire,0\n"
        "2022/09/01 00:21,10,A1,10,B1,-5,US Dollar,x,US Dollar,Wire,0\n"
    )
    with pytest.raises(CommandError, match="row 3"):
        call_command("import_transactions", str(path), "--format", "amlworld", "--team", TEAM)
    assert Transaction.objects.count() == 0
