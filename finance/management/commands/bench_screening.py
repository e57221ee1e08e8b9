"""Screening throughput and latency on synthetic transactions generated in the run (JSON with --json).

    python manage.py bench_screening --json                         # 1,000,000 transactions, SQLite
    python manage.py bench_screening --transactions 50000 --json    # a quick look

Three measurements, all in one process:

- ``batch_tx_per_s``: the synthetic stream in chunks of ``--chunk`` rows, each screened by
  ``finance.screening.engine.screen`` (every scenario, the risk model, evidence for each alert)
  against the rows before it (up to ``--history-days``), then persisted in one database
  transaction: transactions (bulk_create), alerts (bulk_create) and one trail event per alert
  (``audit.services.record``, hash-chained) plus one per chunk. ``engine_tx_per_s`` is the
  screening part alone. The model is the active ModelVersion when there is one, else one trained
  here on the first 100,000 rows, whose injected near-threshold payments are its positives.
- ``service_tx_per_s``: ``--service`` rows of another stream through the cases app's own service
  ``finance.services.ingest.transactions_ingest`` (rules screening, alerts, cases, trail).
- ``single_tx_latency_ms_p99``: ``--single`` POSTs to the real-time endpoint
  ``/api/finance/transactions/screen/`` (DRF test client, in process: view, validation, service,
  database, trail; no network) after the stream, by an officer of the team.

Nothing touches the deployment's database: the command creates a fresh database (SQLite file in a
temporary folder, or ``test_<name>`` on PostgreSQL when DATABASE_URL points there), migrates it,
and drops it at the end.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from audit.models import Event
from audit.services import record
from finance.screening.engine import default_scenarios, screen
from finance.screening.table import TxTable

DAY = 86400
TEAM = "aml-bench"
FORMATS = np.array(["ACH", "Wire", "Cash", "Cheque", "Credit Card", "Reinvestment", "Bitcoin"])
FORMAT_P = np.array([0.35, 0.2, 0.1, 0.1, 0.15, 0.08, 0.02])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "CH", "NL", "IR", "KP", "MM", "PA"])
COUNTRY_P = np.array([0.54, 0.12, 0.1, 0.08, 0.06, 0.06, 0.01, 0.005, 0.005, 0.02])


def synthetic_stream(n: int, *, accounts: int, days: int, seed: int = 0) -> TxTable:
    """``n`` payments among ``accounts`` over ``days``, time-ordered: heavy-tailed amounts and
    activity, some round and near-threshold amounts, cash, foreign and high-risk counterparties."""
    rng = np.random.default_rng(seed)
    activity = rng.pareto(1.5, accounts) + 1.0
    activity /= activity.sum()
    src = rng.choice(accounts, n, p=activity)
    dst = rng.choice(accounts, n, p=activity)
    dst = np.where(dst == src, (dst + 1) % accounts, dst)
    ts = np.sort(rng.integers(1_700_000_000, 1_700_000_000 + days * DAY, n))
    amount = np.round(np.exp(rng.normal(6.0, 1.6, n)), 2)
    kind = rng.random(n)
    amount = np.where(kind < 0.02, np.round(amount, -3) + 1000, amount)  # round figures
    amount = np.where((kind >= 0.02) & (kind < 0.03), rng.uniform(8600, 9999, n).round(2), amount)
    fmt = FORMATS[rng.choice(len(FORMATS), n, p=FORMAT_P)]
    return TxTable(
        tx_ref=np.char.add("bench-", np.arange(n).astype(str)),
        ts=ts,
        src_account=np.char.add("A", src.astype(str)),
        dst_account=np.char.add("A", dst.astype(str)),
        src_bank=np.char.add("B", (src % 50).astype(str)),
        dst_bank=np.char.add("B", (dst % 50).astype(str)),
        amount_paid=amount,
        amount_received=amount,
        currency_paid=np.full(n, "USD"),
        currency_received=np.full(n, "USD"),
        payment_format=fmt,
        src_country=np.full(n, "US"),
        dst_country=COUNTRIES[rng.choice(len(COUNTRIES), n, p=COUNTRY_P)],
        # the injected near-threshold payments are the "laundering" the bench model learns
        label=((kind >= 0.02) & (kind < 0.03)).astype(np.int8),
    )


def _model(stream: TxTable, stderr):
    from finance.models import ModelVersion
    from finance.screening.features import compute_features
    from finance.screening.risk_model import RiskModel, train_risk_model

    row = ModelVersion.objects.filter(active=True).order_by("-created_at").first()
    if row is not None:
        return RiskModel.from_bytes(row.blob), "active ModelVersion"
    n = min(len(stream), 100_000)
    print(f"training the bench model on the first {n:,} synthetic rows (50 rounds) ...", file=stderr)
    part = stream.take(np.arange(n))
    return train_risk_model(compute_features(part), part.label, num_boost_round=50), "trained on the stream"


def _persist(chunk: TxTable, decisions, *, batch: str, model_version: str) -> tuple[int, int]:
    """Transactions (bulk), alerts (bulk) and one trail event per alert plus one per chunk, in one
    database transaction: the write pattern of a persisted screening batch."""
    import datetime as dt

    from django.db import transaction

    from finance.models import Alert, Transaction

    with transaction.atomic():
        txs = Transaction.objects.bulk_create(
            [
                Transaction(
                    tx_ref=str(chunk.tx_ref[i]),
                    ts=dt.datetime.fromtimestamp(int(chunk.ts[i]), tz=dt.UTC),
                    src_account=str(chunk.src_account[i]),
                    dst_account=str(chunk.dst_account[i]),
                    src_bank=str(chunk.src_bank[i]),
                    dst_bank=str(chunk.dst_bank[i]),
                    amount_paid=float(chunk.amount_paid[i]),
                    amount_received=float(chunk.amount_received[i]),
                    currency_paid=str(chunk.currency_paid[i]),
                    currency_received=str(chunk.currency_received[i]),
                    payment_format=str(chunk.payment_format[i]),
                    src_country=str(chunk.src_country[i]),
                    dst_country=str(chunk.dst_country[i]),
                    batch=batch,
                    team=TEAM,
                    decision=d.decision,
                    risk=d.risk,
                )
                for i, d in enumerate(decisions)
            ],
            batch_size=2000,
        )
        flagged = [(tx, d) for tx, d in zip(txs, decisions, strict=True) if d.evidence is not None]
        alerts = Alert.objects.bulk_create(
            [
                Alert(transaction=tx, team=TEAM, risk=d.risk, decision=d.decision, evidence=d.evidence)
                for tx, d in flagged
            ],
            batch_size=500,
        )
        for alert, (_, d) in zip(alerts, flagged, strict=True):
            event = record(
                actor="command:bench_screening",
                action="alert.raise",
                resource_type="alert",
                resource_id=str(alert.pk),
                outcome="succeeded",
                payload={"alert": alert.pk, "batch": batch, "team": TEAM, "evidence": d.evidence},
            )
            alert.trail_event = event.sequence
        Alert.objects.bulk_update(alerts, ["trail_event"], batch_size=500)
        record(
            actor="command:bench_screening",
            action="transaction.screen",
            resource_type="transaction",
            resource_id=batch,
            outcome="succeeded",
            payload={
                "batch": batch,
                "team": TEAM,
                "rows": len(chunk),
                "alerts": len(alerts),
                "model": model_version,
            },
        )
    return len(txs), len(alerts)


def bench_batch(stream: TxTable, model, *, chunk: int, history_days: int, persist: bool, stderr) -> dict:
    """Engine over the stream in chunks (history: the rows before the chunk within history_days),
    each chunk persisted (transactions, alerts, trail) when ``persist``."""
    started, cpu = time.perf_counter(), time.process_time()
    engine_s = persist_s = 0.0
    decisions = {"approve": 0, "review": 0, "hold": 0}
    scenarios = default_scenarios()
    for k, start in enumerate(range(0, len(stream), chunk)):
        stop = min(start + chunk, len(stream))
        lo = np.searchsorted(stream.ts, stream.ts[start] - history_days * DAY)
        history = stream.take(np.arange(lo, start)) if start > lo else None
        part = stream.take(np.arange(start, stop))
        t = time.perf_counter()
        decided = screen(part, history, scenarios, None, model)
        engine_s += time.perf_counter() - t
        for d in decided:
            decisions[d.decision] += 1
        if persist:
            t = time.perf_counter()
            _persist(part, decided, batch=f"bench{k}", model_version=model.version)
            persist_s += time.perf_counter() - t
        done = time.perf_counter() - started
        print(f"{stop:,} / {len(stream):,} ({stop / done:,.0f} tx/s)", file=stderr)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = {
        "engine_tx_per_s": round(len(stream) / engine_s, 1),
        "engine_seconds": round(engine_s, 1),
        "decisions": decisions,
    }
    if persist:
        from finance.models import Alert, Transaction

        out.update(
            {
                "batch_tx_per_s": round(len(stream) / elapsed, 1),
                "batch_tx_per_cpu_s": round(len(stream) / cpu, 1),
                "batch_seconds": round(elapsed, 1),
                "persist_seconds": round(persist_s, 1),
                "persisted_transactions": Transaction.objects.count(),
                "persisted_alerts": Alert.objects.count(),
                "trail_events": Event.objects.count(),
            }
        )
    return out


def bench_service(n: int, *, stderr) -> dict:
    """The cases app's persistence service (rules screening, alerts, cases, trail) on its own stream."""
    from finance.services.ingest import transactions_ingest

    stream = synthetic_stream(n, accounts=max(n // 10, 100), days=30, seed=7)
    stream.tx_ref = np.char.add("svc-", stream.tx_ref)
    started = time.perf_counter()
    result = transactions_ingest(
        actor="command:bench_screening", table=stream, team="aml-bench-svc", source="bench"
    )
    elapsed = time.perf_counter() - started
    print(f"service: {n:,} rows in {elapsed:,.1f} s", file=stderr)
    return {
        "service_transactions": n,
        "service_tx_per_s": round(n / elapsed, 1),
        "service_alerts": result.alerts,
    }


def bench_single(stream: TxTable, *, requests: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.test import APIClient

    user = get_user_model().objects.create_user(username="bench-officer", password=None, department=TEAM)
    user.groups.set([Group.objects.get_or_create(name="compliance_officer")[0]])
    client = APIClient()
    client.force_authenticate(user)
    rng = np.random.default_rng(1)
    last = int(stream.ts[-1])
    latencies, decisions = [], {}
    for k in range(requests):
        i = int(rng.integers(len(stream)))
        body = {
            "team": TEAM,
            "transaction": {
                "tx_ref": f"rt-{k}",
                "ts": last + 60 * (k + 1),
                "src_account": str(stream.src_account[i]),
                "dst_account": str(stream.dst_account[(i + 1) % len(stream)]),
                "amount_paid": float(stream.amount_paid[i]),
                "currency_paid": "USD",
                "payment_format": str(stream.payment_format[i]),
                "dst_country": str(stream.dst_country[i]),
            },
        }
        started = time.perf_counter()
        response = client.post(
            "/api/finance/transactions/screen/", body, format="json", HTTP_HOST=settings.ALLOWED_HOSTS[0]
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise CommandError(
                f"real-time endpoint answered {response.status_code}: {response.content[:300]!r}"
            )
        decisions[response.json()["decision"]] = decisions.get(response.json()["decision"], 0) + 1
    lat = np.array(latencies)
    return {
        "single_tx_requests": requests,
        "single_tx_latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "single_tx_latency_ms_p99": round(float(np.percentile(lat, 99)), 2),
        "single_tx_decisions": decisions,
    }


class Command(BaseCommand):
    help = "Benchmark screening: engine and persisted batch throughput, real-time latency (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--transactions", type=int, default=1_000_000)
        parser.add_argument("--accounts", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=120)
        parser.add_argument("--chunk", type=int, default=100_000, help="rows screened and persisted together")
        parser.add_argument(
            "--service", type=int, default=5000, help="rows through the cases app's ingest service"
        )
        parser.add_argument("--history-days", type=int, default=31)
        parser.add_argument("--single", type=int, default=200, help="real-time requests")
        parser.add_argument("--engine-only", action="store_true", help="no persistence")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        from django.test.utils import setup_databases, teardown_databases

        if options["transactions"] < 1000:
            raise CommandError("--transactions must be at least 1000")
        stream = synthetic_stream(options["transactions"], accounts=options["accounts"], days=options["days"])
        out = {
            "transactions": len(stream),
            "accounts": options["accounts"],
            "days": options["days"],
            "database": connection.vendor,
        }
        with tempfile.TemporaryDirectory(prefix="bench-screening-") as tmp:
            if connection.vendor == "sqlite":
                settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
                    Path(tmp) / "bench.sqlite3"
                )
            print("creating and migrating a fresh database ...", file=sys.stderr)
            old = setup_databases(verbosity=0, interactive=False, aliases={"default"})
            try:
                model, origin = _model(stream, sys.stderr)
                out["model"] = {"version": model.version, "origin": origin}
                out.update(
                    bench_batch(
                        stream,
                        model,
                        chunk=options["chunk"],
                        history_days=options["history_days"],
                        persist=not options["engine_only"],
                        stderr=sys.stderr,
                    )
                )
                if options["service"]:
                    out.update(bench_service(options["service"], stderr=sys.stderr))
                if options["single"]:
                    out.update(bench_single(stream, requests=options["single"]))
            finally:
                teardown_databases(old, verbosity=0)
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2))
        else:
            self.stdout.write(", ".join(f"{k}={v}" for k, v in out.items() if not isinstance(v, dict)))
