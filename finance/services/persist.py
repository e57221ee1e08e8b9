"""Persistence of screened chunks: transactions with their decisions, alerts (cases opened,
scenario versions linked), and at the end of a batch the alerts' trail events; all inside the
batch's database transaction (``finance.services.ingest``). Rows go in as prepared tuples through
``bulk_insert`` (no model instance per row); model instances are built for the alerted rows only.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field

import numpy as np
from django.db import connection
from django.db.models import F
from django.utils import timezone

from audit.services import record_many
from finance.models import Alert, Transaction, name_hash
from finance.screening.table import TxTable
from finance.services.bulk import bulk_insert
from finance.services.cases import alerts_group_into_cases, cases_opened_record
from finance.services.parties import open_text, seal_text
from finance.services.screening_process import ScreenedChunk

MATCH_CONTEXT = b"finance.alert.name_match"


@dataclass
class IngestResult:
    batch: str
    transactions: int = 0
    alerts: int = 0
    holds: int = 0
    cases: int = 0
    decisions: list[dict] = field(default_factory=list)  # per row: tx_ref, id, decision, risk, alert
    streamed: bool = False  # screened ahead in a stream of batches (transactions_ingest_batches)


def _seal_matches(evidence: dict, parties: dict, dropped: dict) -> dict:
    """Alert evidence without a person's name in clear: each match keeps the list entry (public),
    score, party side and keyed name hash; the party's name, the match reason and the tokens the
    score rests on are sealed by the vault (replay opens them). Whitelisted matches that screening
    dropped are listed with their whitelist decision."""
    sides = {name: side for side, name in parties.items() if name}
    matches = []
    for m in evidence["names"]["matches"]:
        party_name = m["party_name"]
        secret = json.dumps(
            {"party_name": party_name, "reason": m["reason"], "details": m["details"]},
            sort_keys=True,
            separators=(",", ":"),
        )
        matches.append(
            {
                "party": sides.get(party_name, ""),
                "party_hash": name_hash(party_name),
                "entry_id": m["entry_id"],
                "entry_name": m["entry_name"],
                "score": m["score"],
                "sealed": base64.b64encode(seal_text(secret, MATCH_CONTEXT)).decode("ascii"),
            }
        )
    evidence["names"]["matches"] = matches
    evidence["names"]["whitelisted"] = [
        {"party": side, **d}
        for side, name in parties.items()
        if name
        for d in dropped.get(name_hash(name), [])
    ]
    return evidence


ANALYZE_SHARE = 0.1  # PostgreSQL: re-analyse when a batch adds this share of the table's rows


def _refresh_statistics(rows: int) -> None:
    """PostgreSQL, after a large batch committed: the planner's statistics of the transaction table
    refreshed now (the columns screening filters on), when the batch added at least a tenth of the
    rows the statistics last counted (autovacuum's own default share, without waiting for it).
    Stale statistics after a bulk load made the real-time history read (a few rows of two accounts)
    intersect the whole time index: 17.6 ms instead of 0.12 ms on 200,000 rows (EXPLAIN ANALYZE)."""
    if connection.vendor != "postgresql":
        return
    table = Transaction._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        found = cursor.fetchone()
        counted = float(found[0]) if found else -1.0
        if counted <= 0 or rows >= ANALYZE_SHARE * counted:
            q = connection.ops.quote_name
            columns = ", ".join(q(c) for c in ("ts", "src_account", "dst_account", "tx_ref", "team"))
            cursor.execute(f"ANALYZE {q(table)} ({columns})")


@dataclass
class BatchWriter:
    """One batch's persistence inside its transaction: each chunk stored as it is screened
    (``store``), then the trail events of the batch's decisions (``trail``). ``parties``: the names
    screening used per tx_ref; ``party_ids``: the counterparty rows of the named parties."""

    actor: object
    batch: str
    team: str
    parties: dict
    party_ids: dict
    history: object  # services.history.History: told of the rows stored
    version_ids: dict  # scenario code -> the active ScenarioVersion's pk
    keep_decisions: bool  # per-row decisions in the result (real time, small batches)
    result: IngestResult = field(init=False)
    opened: list = field(default_factory=list)  # per chunk: (cases opened, alerts), for ``trail``

    def __post_init__(self) -> None:
        self.result = IngestResult(batch=self.batch)

    def store(self, chunk: TxTable, screened: ScreenedChunk) -> IngestResult:
        """A screened chunk stored: its transactions with their decisions, its alerts (cases
        opened, scenario versions linked); the result so far returned."""
        result, team, parties = self.result, self.team, self.parties
        ids, rows = _store_transactions(
            chunk, screened, batch=self.batch, team=team, party_ids=self.party_ids
        )
        self.history.stored_rows(chunk, ids)
        alerts = []
        for i in sorted(screened.evidence):
            tx = _transaction_of(ids[i], rows[i], int(chunk.ts[i]))
            evidence = _seal_matches(screened.evidence[i], parties.get(tx.tx_ref, {}), screened.dropped)
            alerts.append(
                Alert(
                    transaction=tx,
                    team=team,
                    risk=screened.risk[i],
                    decision=screened.decision[i],
                    evidence=evidence,
                )
            )
        opened = alerts_group_into_cases(actor=self.actor, alerts=alerts)
        _insert_alerts(alerts)
        self.opened.append((opened, alerts))
        version_ids = self.version_ids
        bulk_insert(
            Alert.scenario_versions.through,
            ("alert_id", "scenarioversion_id"),
            [
                (alert.pk, version_ids[rule["code"]])
                for alert in alerts
                for rule in alert.evidence["rules"]
                if rule["code"] in version_ids
            ],
        )
        result.cases += len(opened)
        result.transactions += len(chunk)
        result.alerts += len(alerts)
        result.holds += sum(a.decision == "hold" for a in alerts)
        if self.keep_decisions:
            alert_of = {a.transaction_id: a for a in alerts}
            for pk, ref, decision, risk in zip(
                ids, chunk.tx_ref.tolist(), screened.decision, screened.risk, strict=True
            ):
                alert = alert_of.get(pk)
                result.decisions.append(
                    {
                        "tx_ref": ref,
                        "id": pk,
                        "decision": decision,
                        "risk": risk,
                        "alert": alert.pk if alert else None,
                        "hits": [r["code"] for r in alert.evidence["rules"]] if alert else [],
                        "name_matches": [m["entry_id"] for m in alert.evidence["names"]["matches"]]
                        if alert
                        else [],
                    }
                )
        return result

    def trail(self) -> None:
        """The trail events of the batch's decisions (``_trail_alerts``), at the end of its transaction."""
        _trail_alerts(actor=self.actor, trail=self.opened, batch=self.batch, team=self.team)


def _trail_alerts(*, actor, trail: list, batch: str, team: str) -> None:
    """The trail events of a batch's decisions, chunk by chunk: the cases it opened, each with the
    alert that opened it, and one ``alert.raise`` per alert with its evidence (one chained run
    each). Written at the end of the batch's transaction, so the trail's head row (locked by the
    first append until the commit) is not held while the batch is screened and stored: real-time
    screening, whose own event needs that lock, does not wait for a whole import."""
    for opened, alerts in trail:
        cases_opened_record(actor=actor, opened=opened)
        events = record_many(
            actor=actor,
            action="alert.raise",
            resource_type="alert",
            outcome="succeeded",
            events=[
                (
                    alert.pk,
                    {
                        "alert": alert.pk,
                        "transaction": alert.transaction_id,
                        "batch": batch,
                        "team": team,
                        "evidence": alert.evidence,
                    },
                )
                for alert in alerts
            ],
        )
        _link_trail_events(alerts, events)


def _link_trail_events(alerts: list[Alert], events: list) -> None:
    """alert.trail_event = its event's sequence: one UPDATE when both run without gaps (the usual
    case: one writer inserted both in this transaction), else a bulk update."""
    if not alerts:
        return
    for alert, event in zip(alerts, events, strict=True):
        alert.trail_event = event.sequence
    first, last = alerts[0], alerts[-1]
    contiguous = last.pk - first.pk == len(alerts) - 1 and all(
        alert.trail_event - alert.pk == first.trail_event - first.pk for alert in alerts
    )
    if contiguous:
        Alert.objects.filter(pk__gte=first.pk, pk__lte=last.pk).update(
            trail_event=F("id") + (first.trail_event - first.pk)
        )
    else:
        Alert.objects.bulk_update(alerts, ["trail_event"], batch_size=500)


TX_COLUMNS = (
    "tx_ref",
    "ts",
    "src_account",
    "dst_account",
    "src_bank",
    "dst_bank",
    "amount_paid",
    "amount_received",
    "currency_paid",
    "currency_received",
    "payment_format",
    "src_country",
    "dst_country",
    "label",
    "batch",
    "team",
    "decision",
    "risk",
    "originator_id",
    "beneficiary_id",
)


def _insert_alerts(alerts: list[Alert]) -> None:
    """Insert new alerts (ids set on the objects), as bulk_insert does transactions."""
    if not alerts:
        return
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    adapt_json = connection.ops.adapt_json_value
    ids = bulk_insert(
        Alert,
        ("transaction_id", "case_id", "team", "risk", "decision", "status", "evidence", "created_at"),
        [
            (
                a.transaction_id,
                a.case_id,
                a.team,
                a.risk,
                a.decision,
                a.status,
                adapt_json(a.evidence, None),
                now,
            )
            for a in alerts
        ],
    )
    for alert, pk in zip(alerts, ids, strict=True):
        alert.pk = pk
        alert._state.adding = False


def _store_transactions(
    chunk: TxTable, screened: ScreenedChunk, *, batch: str, team: str, party_ids: dict
) -> tuple[list[int], list[tuple]]:
    """Insert the chunk's transactions with their decisions; returns their ids and stored rows."""
    refs = chunk.tx_ref.tolist()
    n = len(refs)
    no_party = (None, None)
    parties = [party_ids.get(ref, no_party) for ref in refs] if party_ids else [no_party] * n
    # column lists zipped in C: a per-row tuple built in Python cost as much as the insert
    rows = list(
        zip(
            refs,
            _stamps(chunk.ts),
            chunk.src_account.tolist(),
            chunk.dst_account.tolist(),
            chunk.src_bank.tolist(),
            chunk.dst_bank.tolist(),
            chunk.amount_paid.tolist(),
            chunk.amount_received.tolist(),
            chunk.currency_paid.tolist(),
            chunk.currency_received.tolist(),
            chunk.payment_format.tolist(),
            chunk.src_country.tolist(),
            chunk.dst_country.tolist(),
            [None if label < 0 else label for label in chunk.label.tolist()],
            [batch] * n,
            [team] * n,
            screened.decision,
            screened.risk,
            [p[0] for p in parties],
            [p[1] for p in parties],
            strict=True,
        )
    )
    return bulk_insert(Transaction, TX_COLUMNS, rows), rows


def _stamps(ts: np.ndarray) -> list:
    """Epoch seconds as the database adapter stores datetimes. SQLite: the text Django writes for
    an aware datetime (UTC, naive, "YYYY-MM-DD HH:MM:SS"; whole seconds), built by numpy; the
    text must be byte-identical, since SQLite compares datetimes as text."""
    if connection.vendor == "sqlite":
        text = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s")
        return np.char.replace(text, "T", " ").tolist()
    adapt = connection.ops.adapt_datetimefield_value
    return [adapt(dt.datetime.fromtimestamp(t, tz=dt.UTC)) for t in ts.tolist()]


def _transaction_of(pk: int, row: tuple, ts: int) -> Transaction:
    """A stored transaction as a model instance (built for the alerted rows only: instances cost)."""
    tx = Transaction(**dict(zip(TX_COLUMNS, row, strict=True)))
    tx.ts = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    tx.pk = pk
    tx._state.adding = False
    return tx


def open_matches(evidence: dict) -> dict:
    """The engine's form of an alert's evidence (match names and tokens unsealed) for replay."""
    opened = json.loads(json.dumps(evidence))
    for m in opened["names"]["matches"]:
        secret = json.loads(open_text(base64.b64decode(m.pop("sealed")), MATCH_CONTEXT))
        m.update(secret)
    opened["names"].pop("whitelisted", None)
    return opened
