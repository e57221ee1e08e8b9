"""Ingestion through the whole engine: rules + active risk model + active sanctions lists, on the
batch, real-time and file-import paths; each alert's trail event replays identically; versioned
list imports; expiring whitelist decisions; party names sealed at rest."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit.models import Event
from finance import services
from finance.models import (
    Alert,
    Counterparty,
    MatchWhitelist,
    ModelVersion,
    SanctionsEntry,
    SanctionsListVersion,
    Transaction,
)
from finance.screening.features import compute_features
from finance.screening.risk_model import train_risk_model
from finance.services import parties as party_services
from finance.services.sanctions import match_whitelist, sanctions_list_import
from tests.finance.conftest import TEAM, structuring_rows
from tests.finance.test_risk_model import amlsim_slice

pytestmark = pytest.mark.django_db
UN = Path(settings.SHARED_DATA_DIR) / "sanctions" / "un_list.csv"
LISTED = "SALEK, ABDULHAI"  # un_queries_with_typos.csv row 1: entry "ABDULHAI SALEK", order swapped
TYPO = "AREFULLAHA REF GHAZI MOHAMMAD"  # entry "AREFULLAH AREF GHAZI MOHAMMAD" with a moved space


@pytest.fixture(scope="module")
def trained():
    table = amlsim_slice(6000)
    return train_risk_model(
        compute_features(table), table.label, num_boost_round=8, params={"num_leaves": 7, "num_threads": 1}
    )


@pytest.fixture
def engine_ready(trained):
    """An active risk model and the first 80 entries of the UN list as the active list 'un'."""
    ModelVersion.objects.create(version=trained.version, blob=trained.to_bytes(), active=True)
    head = "".join(UN.read_text(encoding="utf-8").splitlines(keepends=True)[:81])
    return sanctions_list_import(actor="system:test", name="un", source=io.StringIO(head), version="2026-12")


def _named(rows, src=None, dst=None):
    for row in rows:
        if src:
            row["src_name"] = src
        if dst:
            row["dst_name"] = dst
    return rows


def test_batch_alerts_combine_rules_model_and_names_and_replay_identically(client, officer, engine_ready):
    rows = _named(structuring_rows(), src="Maria Jose Lindqvist")
    rows[3]["dst_name"] = LISTED  # an ordinary payment to a listed person
    client.force_login(officer)
    response = client.post(
        "/api/finance/transactions/batch/", {"transactions": rows}, content_type="application/json"
    )
    assert response.status_code == 201, response.content
    decided = {d["tx_ref"]: d for d in response.json()["decisions"]}
    assert decided["S2"]["decision"] == "review" and decided["S2"]["hits"] == ["STRUCTURING"]
    assert decided["S-ok"]["decision"] == "hold" and decided["S-ok"]["hits"] == []
    assert decided["S-ok"]["name_matches"] == ["un:1"]
    for alert in Alert.objects.all():
        event = Event.objects.get(action="alert.raise", resource_id=str(alert.pk))
        evidence = json.loads(event.payload_json)["evidence"]
        assert evidence == alert.evidence and alert.trail_event == event.sequence
        model = evidence["model"]
        assert model["version"] == engine_ready_model_version()
        assert set(model["features"]) | {"bias"} == set(model["contributions"])
        assert evidence["names"]["list_version"] == "un@2026-12"
        assert services.alert_replay(alert_id=alert.pk).identical
    held = Alert.objects.get(transaction__tx_ref="S-ok").evidence
    [match] = held["names"]["matches"]
    assert match["party"] == "dst" and match["entry_name"] == "ABDULHAI SALEK" and match["score"] == 1.0
    assert "SALEK" not in json.dumps(match | {"entry_name": ""})  # the party's name only sealed
    call_command("replay_alert", str(Alert.objects.get(transaction__tx_ref="S2").pk))


def engine_ready_model_version() -> str:
    return ModelVersion.objects.get(active=True).version


def test_realtime_and_file_import_use_the_same_engine(client, officer, engine_ready, tmp_path):
    client.force_login(officer)
    one = {**structuring_rows(prefix="R")[3], "dst_name": TYPO}
    response = client.post(
        "/api/finance/transactions/screen/", {"transaction": one}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["decision"] == "hold" and response.json()["name_matches"] == ["un:4"]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(_named(structuring_rows(prefix="F", account="ACC-F"), dst=LISTED)))
    call_command("import_transactions", str(path), "--format", "json", "--team", TEAM)
    imported = Alert.objects.filter(transaction__batch__isnull=False, transaction__tx_ref__startswith="F")
    assert imported.count() == 4 and all(a.decision == "hold" for a in imported)
    for alert in Alert.objects.all():
        assert alert.evidence["model"]["version"] == engine_ready_model_version()
        assert services.alert_replay(alert_id=alert.pk).identical


def test_replay_detects_a_changed_contribution_and_a_changed_match(officer, engine_ready):
    rows = _named(structuring_rows(), dst=LISTED)
    services.transactions_ingest(
        actor=officer, table=services.rows_validate(rows), team=TEAM, parties=services.rows_parties(rows)
    )
    alert = Alert.objects.filter(decision="hold").first()
    event = Event.objects.get(action="alert.raise", resource_id=str(alert.pk))
    payload = json.loads(event.payload_json)
    payload["evidence"]["model"]["contributions"]["log_amount_usd"] += 0.5
    payload["evidence"]["names"]["matches"][0]["party_hash"] = "0" * 64
    with connection.cursor() as cursor:  # behind the trail service's back
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            f"UPDATE {Event._meta.db_table} SET payload_json = %s WHERE id = %s",  # noqa: S608
            [json.dumps(payload), event.pk],
        )
    result = services.alert_replay(alert_id=alert.pk)
    assert not result.identical and not result.event_hash_ok
    joined = " | ".join(result.differences)
    assert "contributions" in joined and "party hash" in joined


def test_sanctions_lists_are_versioned_all_or_nothing_imports():
    first = sanctions_list_import(actor="system:test", name="un", source=str(UN))
    assert (
        first.active
        and first.entries == 683
        and SanctionsEntry.objects.filter(list_version=first).count() == 683
    )
    with pytest.raises(services.FinanceRefused, match="already imported"):
        sanctions_list_import(actor="system:test", name="un", source=str(UN))
    bad = io.StringIO("full_name,date_of_birth\nJOHN DOE,1970\n,1971\n---,1972\n")
    with pytest.raises(services.BatchRejected) as rejected:
        sanctions_list_import(actor="system:test", name="un", source=bad, version="bad")
    assert [e["row"] for e in rejected.value.errors] == [3, 4]
    assert SanctionsListVersion.objects.count() == 1
    second = sanctions_list_import(
        actor="system:test", name="un", source=io.StringIO("full_name\nJOHN DOE\n"), version="v2"
    )
    first.refresh_from_db()
    assert second.active and not first.active and first.retired_at is not None
    events = Event.objects.filter(action="sanctions_list.import").order_by("sequence")
    assert [e.payload["version"] for e in events] == [first.version, "v2"]
    assert events.last().payload["replaces"] == [first.version]
    out = io.StringIO()
    call_command(
        "import_sanctions_list", str(UN), "--name", "pep", "--kind", "pep", "--list-version", "p1", stdout=out
    )
    assert "683 entries" in out.getvalue()
    assert set(SanctionsListVersion.objects.filter(active=True).values_list("name", flat=True)) == {
        "un",
        "pep",
    }


def test_a_whitelisted_match_is_dropped_until_it_expires(officer, officer_us, engine_ready):
    def ingest(prefix):
        row = {**structuring_rows(prefix=prefix)[3], "dst_name": LISTED}
        result = services.transactions_ingest(
            actor=officer,
            table=services.rows_validate([row]),
            team=TEAM,
            parties=services.rows_parties([row]),
        )
        return result.decisions[0]

    first = ingest("W1")
    assert first["decision"] == "hold"
    alert = Alert.objects.get(pk=first["alert"])
    with pytest.raises(services.FinanceRefused, match="why"):
        match_whitelist(actor=officer, alert=alert, entry_id="un:1", party="dst", reason="no")
    from access.errors import PolicyDenied

    with pytest.raises(PolicyDenied):
        match_whitelist(
            actor=officer_us, alert=alert, entry_id="un:1", party="dst", reason="Different person: born 1990."
        )
    assert MatchWhitelist.objects.count() == 0
    row = match_whitelist(
        actor=officer,
        alert=alert,
        entry_id="un:1",
        party="dst",
        reason="Different person: born 1990.",
        days=30,
    )
    event = Event.objects.get(action="sanctions_match.whitelist")
    assert event.sequence == row.trail_event and event.payload["entry_id"] == "un:1"
    assert event.payload["expires_at"] and "SALEK" not in event.payload_json.replace("ABDULHAI SALEK", "")

    second = ingest("W2")
    assert second["decision"] == "approve" and second["name_matches"] == []
    # time passes: the decision expires and the party matches the entry again
    MatchWhitelist.objects.filter(pk=row.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    third = ingest("W3")
    assert third["decision"] == "hold" and third["name_matches"] == ["un:1"]


def test_whitelisted_match_is_listed_in_an_alert_that_fires_for_other_reasons(officer, engine_ready):
    rows = _named(structuring_rows(prefix="X"), dst=LISTED)
    result = services.transactions_ingest(
        actor=officer, table=services.rows_validate(rows), team=TEAM, parties=services.rows_parties(rows)
    )
    alert = Alert.objects.get(pk=next(d["alert"] for d in result.decisions if d["tx_ref"] == "X0"))
    match_whitelist(
        actor=officer, alert=alert, entry_id="un:1", party="dst", reason="Known customer, passport checked."
    )
    rows = _named(structuring_rows(prefix="Y", account="ACC-Y"), dst=LISTED)
    result = services.transactions_ingest(
        actor=officer, table=services.rows_validate(rows), team=TEAM, parties=services.rows_parties(rows)
    )
    y2 = Alert.objects.get(pk=next(d["alert"] for d in result.decisions if d["tx_ref"] == "Y2"))
    assert y2.decision == "review" and y2.evidence["names"]["matches"] == []
    assert y2.evidence["names"]["whitelisted"][0]["entry_id"] == "un:1"
    assert services.alert_replay(alert_id=y2.pk).identical


def _database_text() -> str:
    """Everything the database holds, as text: the SQLite dump, or every row of every table."""
    if connection.vendor == "sqlite":
        return "\n".join(connection.connection.iterdump())
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608
            chunks += [repr(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


def test_person_names_and_identifiers_are_sealed_at_rest(officer, engine_ready):
    customer = party_services.customer_upsert(
        actor=officer,
        bank="B1",
        ref="C-77",
        name="Ingrid Marta Oyelaran",
        identifier="P-998877665",
        date_of_birth="1981-04-02",
        kyc_risk="high",
        team=TEAM,
        accounts=[{"number": "ACC-1", "currency": "EUR", "opened": dt.date(2020, 1, 1)}],
    )
    rows = structuring_rows()
    rows[0]["dst_name"] = "Theodora Quistgaard"
    rows[3]["dst_name"] = LISTED
    for row in rows:
        row["src_bank"] = "B1"
    services.transactions_ingest(
        actor=officer, table=services.rows_validate(rows), team=TEAM, parties=services.rows_parties(rows)
    )
    dump = _database_text()
    for secret in (
        "Ingrid",
        "Oyelaran",
        "P-998877665",
        "1981-04-02",
        "Theodora",
        "Quistgaard",
        "SALEK, ABDULHAI",
    ):
        assert secret not in dump, secret
    # searchable by keyed hash, readable through the vault
    assert list(party_services.customers_by_name(" ingrid  marta OYELARAN")) == [customer]
    assert party_services.customer_name(customer) == "Ingrid Marta Oyelaran"
    [party] = party_services.counterparties_by_name("Theodora Quistgaard")
    assert party_services.counterparty_name(party) == "Theodora Quistgaard"
    assert Transaction.objects.get(tx_ref="S0").beneficiary == party
    assert Counterparty.objects.count() == 2


WHITELIST_STATUS = {
    "anonymous": 401,
    "wrong role": 404,
    "other team": 404,
    "auditor": 403,
    "same team": 201,
}


@pytest.mark.parametrize("kind", list(WHITELIST_STATUS))
def test_whitelist_endpoint_authorization(kind, client, make_user, officer, engine_ready):
    row = {**structuring_rows(prefix="A")[3], "dst_name": LISTED}
    result = services.transactions_ingest(
        actor=officer, table=services.rows_validate([row]), team=TEAM, parties=services.rows_parties([row])
    )
    alert_id = result.decisions[0]["alert"]
    user = {
        "anonymous": None,
        "wrong role": lambda: make_user("maintenance_engineer", site="site-a", department=TEAM),
        "other team": lambda: make_user("compliance_officer", department="aml-us"),
        "auditor": lambda: make_user("auditor"),
        "same team": lambda: make_user("compliance_officer", department=TEAM),
    }[kind]
    if user is not None:
        client.force_login(user())
    events = Event.objects.count()
    response = client.post(
        f"/api/finance/alerts/{alert_id}/whitelist/",
        {"entry_id": "un:1", "party": "dst", "reason": "Different person: passport checked.", "days": 30},
        content_type="application/json",
    )
    assert response.status_code == WHITELIST_STATUS[kind], response.content
    if kind == "same team":
        assert MatchWhitelist.objects.get().trail_event == response.json()["trail_event"]
    else:
        assert MatchWhitelist.objects.count() == 0
        assert not Event.objects.filter(action="sanctions_match.whitelist").exists()
        assert Event.objects.count() >= events  # denials may be trailed, nothing else is written
    bad = client.post(
        f"/api/finance/alerts/{alert_id}/whitelist/",
        {"entry_id": "un:999", "party": "dst", "reason": "Different person: passport checked."},
        content_type="application/json",
    )
    assert bad.status_code in (400, WHITELIST_STATUS[kind]) and bad.status_code != 500


def _stream(prefix: str, n: int = 1200):
    import numpy as np

    from finance.management.commands.bench_screening import synthetic_stream

    stream = synthetic_stream(n, accounts=60, days=10, seed=5)
    stream.ts = np.arange(len(stream), dtype=np.int64) * 577 + 1_700_000_000  # distinct timestamps
    for column in ("tx_ref", "src_account", "dst_account"):
        setattr(stream, column, np.char.add(prefix, getattr(stream, column)))
    return stream


def test_partitions_by_account_store_the_batch_once_with_single_process_decisions(engine_ready):
    single = services.transactions_ingest(actor="system:test", table=_stream("a-"), team=TEAM, chunk_rows=500)
    parts = [
        services.transactions_ingest(
            actor="system:test", table=_stream("b-"), team=TEAM, chunk_rows=500, partition=(k, 2)
        )
        for k in (1, 0)  # in any order
    ]
    assert 0 < parts[0].transactions < 1200 and sum(p.transactions for p in parts) == 1200
    assert single.alerts > 0 and sum(p.alerts for p in parts) == single.alerts
    stored = Transaction.objects.values_list("tx_ref", "decision", "risk")
    a = {ref[2:]: (d, round(r, 12)) for ref, d, r in stored if ref.startswith("a-")}
    b = {ref[2:]: (d, round(r, 12)) for ref, d, r in stored if ref.startswith("b-")}
    assert len(a) == len(b) == 1200 and a == b
    for alert in Alert.objects.filter(transaction__tx_ref__startswith="b-")[:20]:
        assert services.alert_replay(alert_id=alert.pk).identical


def _screening_processes() -> list:
    import multiprocessing

    return [p for p in multiprocessing.active_children() if p.name == "finance-screening"]


_FORKS: list[int] = []  # one entry per fork of this test process (the screening processes)
os.register_at_fork(after_in_parent=lambda: _FORKS.append(1))


def test_screening_ahead_gives_the_same_decisions_and_stays_all_or_nothing(engine_ready, settings):
    """Chunks screened in a second process while this one persists: the same stored decisions,
    alerts and evidence as the batch screened as one chunk here and then stored (serial); a failure
    after some chunks were written, or a screening process that dies, leaves nothing of the batch."""
    stream = _stream("x-", 600)
    refs = stream.tx_ref.tolist()
    parties = {refs[i]: {"src": "Jane Roe", "dst": LISTED} for i in range(0, 600, 47)}

    def run(prefix: str, chunk_rows: int, ahead: bool):
        settings.FINANCE_SCREEN_AHEAD = ahead
        table = _stream(prefix, 600)
        named = {prefix + ref[2:]: names for ref, names in parties.items()}
        return services.transactions_ingest(
            actor="system:test", table=table, team=TEAM, chunk_rows=chunk_rows, parties=named
        )

    forks = len(_FORKS)
    whole = run("a-", 600, False)
    assert len(_FORKS) == forks  # serial: screened here
    ahead = run("b-", 200, True)
    assert len(_FORKS) == forks + 1  # chunks 1 and 2 screened in a second process
    assert not _screening_processes()  # which is gone once the batch is stored
    assert whole.alerts > 0 and whole.alerts == ahead.alerts
    stored = {}
    for ref, decision, risk in Transaction.objects.values_list("tx_ref", "decision", "risk"):
        stored.setdefault(ref[:2], {})[ref[2:]] = (decision, round(risk, 12))
    assert len(stored["a-"]) == 600 and stored["a-"] == stored["b-"]

    def evidence(prefix):
        out = {}
        for ref, ev in Alert.objects.filter(transaction__tx_ref__startswith=prefix).values_list(
            "transaction__tx_ref", "evidence"
        ):
            ev = {k: v for k, v in ev.items() if k not in ("transaction", "names")}
            out[ref[2:]] = json.dumps(ev, sort_keys=True).replace(f'"{prefix}', '"')
        return out

    assert evidence("a-") == evidence("b-")
    assert any(
        a.evidence["names"]["matches"] for a in Alert.objects.filter(transaction__tx_ref__startswith="b-")
    )

    # the import stops (its progress callback raises) after two chunks were written, while the
    # third is being screened ahead: nothing of the batch is left
    settings.FINANCE_SCREEN_AHEAD = True
    counts = (Transaction.objects.count(), Alert.objects.count(), Event.objects.count())

    def progress(done, total):
        if done >= 400:
            raise RuntimeError("import stopped")

    with pytest.raises(RuntimeError, match="import stopped"):
        services.transactions_ingest(
            actor="system:test", table=_stream("d-", 600), team=TEAM, chunk_rows=200, progress=progress
        )
    assert (Transaction.objects.count(), Alert.objects.count(), Event.objects.count()) == counts
    assert not _screening_processes()


def test_a_failed_or_killed_screening_process_is_an_error_not_a_result():
    """What the batch's transaction rolls back on (as above): the child's exception, with its
    traceback, or a child that died without answering."""
    import time

    from finance.services.screening_process import ChunkScreener, ScreeningProcessFailed

    def broken(start, stop):
        return {}["no such column"]

    screener = ChunkScreener(broken, [(0, 10)], here=False)
    with pytest.raises(ScreeningProcessFailed, match="KeyError: 'no such column'"):
        screener.get(0)
    screener.close()

    screener = ChunkScreener(lambda start, stop: time.sleep(60), [(0, 10), (10, 20)], here=False)
    (process,) = _screening_processes()
    os.kill(process.pid, signal.SIGKILL)
    with pytest.raises(ScreeningProcessFailed, match="without a result"):
        screener.get(0)
    screener.close()
    assert not _screening_processes()
