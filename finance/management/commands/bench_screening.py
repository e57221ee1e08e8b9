"""Screening throughput and latency on synthetic transactions generated in the run (JSON with --json).

    python manage.py bench_screening --json                         # 1,000,000 transactions, SQLite
    python manage.py bench_screening --transactions 50000 --json    # a quick look

Measurements (one command):

- ``batch_tx_per_s``: the stream through the ingest service itself,
  ``finance.services.ingest.transactions_ingest_batches``: ``--batch-rows`` rows per batch, each
  batch its own database transaction (``--no-stream``: one ``transactions_ingest`` call per batch):
  history read from the database, every active scenario, the active risk model
  (SHAP contributions for each alert), the active UN list against the names on ``--named`` of the
  rows (sealed at rest), then transactions, alerts, cases and one hash-chained trail event per
  alert and per case persisted. The model is the active ModelVersion, else one trained here on the
  first 100,000 rows and stored active. The ``--chunk-rows`` chunks are screened by a second
  process and by this one (each takes the next untaken chunk) while this one persists, across
  batches when streamed (``FINANCE_SCREEN_AHEAD``; ``--no-screen-ahead`` screens every chunk here);
  ``batch_streamed_batches`` counts the batches the stream stored as screened ahead.
  ``batch_tx_per_cpu_s`` counts the CPU time of this process and of its
  screening processes; on PostgreSQL ``batch_db_server_cpu_s`` is the CPU time of the session's
  server process (index and WAL work that SQLite does in this process). ``alert_rate`` says how many alerts that persistence
  carried. ``--engine`` adds ``engine_tx_per_s``: the engine alone, no database.
- ``single_tx_latency_ms_p99``: ``--single`` POSTs to the real-time endpoint
  ``/api/finance/transactions/screen/`` (DRF test client, in process: view, validation, service,
  database, trail; no network) after the stream, by an officer of the team; with the calling
  process's CPU time per call (``single_tx_cpu_ms_*``), since wall time on a shared machine
  includes waiting for a core, and on PostgreSQL the server process's (``single_tx_db_cpu_ms_*``):
  wall time beyond both is waiting (a core, the disk's flush of the commit).
  ``single_tx_gc_ms_max`` / ``single_tx_gc_full_collections``: the longest garbage-collection
  pause inside one call and the full collections during the calls (the first call of a process
  collects once and freezes what it holds: ``ingest._freeze_long_lived``).
- ``--scale-out ROWS``: the partitioned import (``finance.screen_file_partition``, two payer-account
  partitions) of up to 50,000 rows on 1, then 2, Celery worker processes the bench starts on a
  private queue of the configured broker and the bench database (``scale_out_*``).

The synthetic stream's realism (recurring payees, a sanctions-plausible country mix, about 1% of
rows alerting) is described in docs/finance.md, "Measured figures".

Nothing touches the deployment's database: the command creates a fresh database (SQLite file in a
temporary folder, or ``test_<name>`` on PostgreSQL when DATABASE_URL points there), migrates it,
and drops it at the end.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count

from audit.models import Event
from finance.screening.engine import default_scenarios, screen
from finance.screening.table import TxTable

DAY = 86400
TEAM = "aml-bench"
FORMATS = np.array(["ACH", "Wire", "Cash", "Cheque", "Credit Card", "Reinvestment", "Bitcoin"])
FORMAT_P = np.array([0.35, 0.2, 0.1, 0.1, 0.15, 0.08, 0.02])
# Counterparty account countries: mostly domestic and EU/UK; 0.35% of accounts in FATF-listed
# jurisdictions (grey list NG, PH, VN; call for action IR at 0.01%): a bank under OFAC/EU
# sanctions has almost no payments to Iran, DPRK or Myanmar (the first generator sent 2% there).
COUNTRIES = np.array(["US", "GB", "DE", "FR", "CH", "NL", "PA", "NG", "PH", "VN", "IR"])
COUNTRY_P = np.array([0.5565, 0.12, 0.1, 0.08, 0.06, 0.06, 0.02, 0.0015, 0.001, 0.0009, 0.0001])
REGULAR_PAYEES = 4  # each account's recurring payees (rent, payroll, suppliers, family)
REGULAR_SHARE = 0.85  # share of payments that go to one of them; the rest to anyone
NEAR_THRESHOLD_SHARE = 0.002  # injected just-below-CTR payments (the bench model's positives)


def synthetic_stream(n: int, *, accounts: int, days: int, seed: int = 0) -> TxTable:
    """``n`` payments among ``accounts`` over ``days``, time-ordered: heavy-tailed amounts and
    activity, recurring payees (most payments repeat a relationship, as in a bank's book), some
    round and near-threshold amounts, cash, foreign and a few high-risk counterparties."""
    rng = np.random.default_rng(seed)
    activity = rng.lognormal(0.0, 1.0, accounts)  # skewed, without hub accounts a bank would segment
    activity /= activity.sum()
    src = rng.choice(accounts, n, p=activity)
    regular = rng.integers(0, accounts, (accounts, REGULAR_PAYEES))  # each account a payee of ~4
    anyone = rng.choice(accounts, n, p=activity)
    dst = np.where(rng.random(n) < REGULAR_SHARE, regular[src, rng.integers(0, REGULAR_PAYEES, n)], anyone)
    dst = np.where(dst == src, (dst + 1) % accounts, dst)
    country = COUNTRIES[rng.choice(len(COUNTRIES), accounts, p=COUNTRY_P)]
    ts = np.sort(rng.integers(1_700_000_000, 1_700_000_000 + days * DAY, n))
    amount = np.round(np.exp(rng.normal(6.0, 1.6, n)), 2)
    kind = rng.random(n)
    near = (kind >= 0.02) & (kind < 0.02 + NEAR_THRESHOLD_SHARE)
    amount = np.where(kind < 0.02, np.round(amount, -3) + 1000, amount)  # round figures
    amount = np.where(near, rng.uniform(8600, 9999, n).round(2), amount)
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
        dst_country=country[dst],
        # the injected near-threshold payments are the "laundering" the bench model learns
        label=near.astype(np.int8),
    )


def _model(stream: TxTable, stderr):
    """The active ModelVersion, or one trained here on the first 100,000 rows (whose injected
    near-threshold payments are its positives) and stored active, so the service screens with it."""
    from finance.models import ModelVersion
    from finance.screening.features import compute_features
    from finance.screening.risk_model import RiskModel, train_risk_model

    row = ModelVersion.objects.filter(active=True).order_by("-created_at").first()
    if row is not None:
        return RiskModel.from_bytes(row.blob), "active ModelVersion"
    n = min(len(stream), 100_000)
    print(f"training the bench model on the first {n:,} synthetic rows (50 rounds) ...", file=stderr)
    part = stream.take(np.arange(n))
    model = train_risk_model(compute_features(part), part.label, num_boost_round=50)
    ModelVersion.objects.create(version=model.version, blob=model.to_bytes(), active=True)
    return model, "trained on the stream"


def _lists(stderr) -> str | None:
    from finance.services.sanctions import sanctions_list_import

    path = Path(settings.SHARED_DATA_DIR) / "sanctions" / "un_list.csv"
    if not path.exists():
        print(f"{path} not found: screening without a sanctions list", file=stderr)
        return None
    return sanctions_list_import(actor="command:bench_screening", name="un", source=str(path)).label


def _named_parties(stream: TxTable, fraction: float, seed: int = 3) -> dict[str, dict]:
    """Originator/beneficiary names on ``fraction`` of the rows: people from the shared negatives
    file (not listed) and, on one named row in 50, a UN list entry with a typo."""
    from finance.screening.names import load_list_csv

    data = Path(settings.SHARED_DATA_DIR) / "sanctions"
    if fraction <= 0 or not (data / "negatives_global.csv").exists():
        return {}
    people = [e.name for e in load_list_csv(data / "negatives_global.csv")]
    listed = [e.name for e in load_list_csv(data / "un_queries_with_typos.csv")]
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(rng.random(len(stream)) < fraction)
    out = {}
    for i in rows.tolist():
        dst = listed[i % len(listed)] if rng.random() < 0.02 else people[i % len(people)]
        out[str(stream.tx_ref[i])] = {"src": people[(i * 7) % len(people)], "dst": dst}
    return out


def _cpu_s() -> float:
    """CPU seconds of this process and of its children that ended (the screening processes)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _db_server_cpu_s() -> float | None:
    """PostgreSQL on this machine: CPU seconds of this session's server process so far (None
    elsewhere): the index and WAL work of a write runs there, not in this process."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:  # the server runs elsewhere
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_batch(
    stream: TxTable,
    *,
    batch_rows: int,
    chunk_rows: int,
    ahead: bool,
    parties: dict,
    stderr,
    stream_batches: bool = True,
) -> dict:
    """The stream through the ingest service (``transactions_ingest``: history from the database,
    rules + model + lists, transactions, alerts, cases and trail events persisted), in batches of
    ``batch_rows``, each one database transaction, as an import or a bank's batch feed sends them."""
    from finance.models import Alert, Case, Transaction
    from finance.services.ingest import transactions_ingest, transactions_ingest_batches

    settings.FINANCE_SCREEN_AHEAD = ahead
    load = os.getloadavg()[0]
    server = _db_server_cpu_s()
    started, cpu, own = time.perf_counter(), _cpu_s(), time.process_time()
    alerts = holds = streamed = 0
    if stream_batches:
        # one call: each batch of ``batch_rows`` its own transaction, screening running ahead of
        # the writes across batches
        def progress(done: int, total: int) -> None:
            rate = done / (time.perf_counter() - started)
            print(f"{done:,} / {total:,} ({rate:,.0f} tx/s)", file=stderr)

        results = transactions_ingest_batches(
            actor="command:bench_screening",
            table=stream,
            team=TEAM,
            batch_rows=batch_rows,
            source="bench",
            parties=parties,
            progress=progress,
            chunk_rows=chunk_rows,
        )
        alerts, holds = sum(r.alerts for r in results), sum(r.holds for r in results)
        streamed = sum(r.streamed for r in results)
    for start in range(0, len(stream), batch_rows) if not stream_batches else ():
        stop = min(start + batch_rows, len(stream))
        part = stream.take(np.arange(start, stop))
        refs = part.tx_ref.tolist()
        named = {ref: parties[ref] for ref in refs if ref in parties}
        result = transactions_ingest(
            actor="command:bench_screening",
            table=part,
            team=TEAM,
            source="bench",
            parties=named,
            chunk_rows=chunk_rows,
        )
        alerts, holds = alerts + result.alerts, holds + result.holds
        done = time.perf_counter() - started
        print(f"{stop:,} / {len(stream):,} ({stop / done:,.0f} tx/s, {alerts:,} alerts)", file=stderr)
    elapsed, cpu, own = time.perf_counter() - started, _cpu_s() - cpu, time.process_time() - own
    server = _db_server_cpu_s() - server if server is not None else None
    return {
        "batch_tx_per_s": round(len(stream) / elapsed, 1),
        "batch_tx_per_cpu_s": round(len(stream) / cpu, 1),
        "batch_cpu_s": round(cpu, 1),
        "batch_screening_process_cpu_s": round(max(cpu - own, 0.0), 1),
        "batch_db_server_cpu_s": round(server, 1) if server is not None else None,
        "batch_seconds": round(elapsed, 1),
        "batch_rows_per_call": batch_rows,
        "batch_chunk_rows": chunk_rows,
        "batch_screen_ahead": ahead,
        "batch_stream": stream_batches,
        # batches the stream stored as screened ahead (the rest fell back to a call per batch: the
        # book or the configuration changed between batches)
        "batch_streamed_batches": streamed,
        # the host's 1-minute load average before and after (a shared machine: what else ran)
        "batch_load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
        "named_rows": len(parties),
        "alerts": alerts,
        "holds": holds,
        "alert_rate": round(alerts / len(stream), 4),
        "persisted_transactions": Transaction.objects.count(),
        "persisted_alerts": Alert.objects.count(),
        "cases": Case.objects.count(),
        "trail_events": Event.objects.count(),
        "alerts_by_scenario": dict(
            Alert.scenario_versions.through.objects.values_list("scenarioversion__code")
            .annotate(n=Count("id"))
            .order_by("-n")
            .values_list("scenarioversion__code", "n")
        ),
    }


def bench_engine(stream: TxTable, model, *, chunk: int, history_days: int) -> dict:
    """The screening engine alone over the stream (no database), for comparison."""
    started = time.perf_counter()
    decisions = {"approve": 0, "review": 0, "hold": 0}
    scenarios = default_scenarios()
    for start in range(0, len(stream), chunk):
        stop = min(start + chunk, len(stream))
        lo = np.searchsorted(stream.ts, stream.ts[start] - history_days * DAY)
        history = stream.take(np.arange(lo, start)) if start > lo else None
        for d in screen(stream.take(np.arange(start, stop)), history, scenarios, None, model):
            decisions[d.decision] += 1
    elapsed = time.perf_counter() - started
    return {"engine_tx_per_s": round(len(stream) / elapsed, 1), "engine_decisions": decisions}


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
    latencies, cpu_ms, server_ms, decisions = [], [], [], {}
    # garbage collection inside the calls (a full collection scans every tracked object of the
    # process; the service freezes the long-lived ones after its first real-time call)
    pauses = {"since": 0.0, "ms": 0.0, "longest": 0.0, "full": 0}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            pauses["since"] = time.perf_counter()
        else:
            pauses["ms"] += (time.perf_counter() - pauses["since"]) * 1000
            pauses["full"] += info["generation"] == 2

    gc.callbacks.append(on_gc)
    for k in range(requests):
        pauses["ms"] = 0.0
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
        server = _db_server_cpu_s()
        started, cpu = time.perf_counter(), time.process_time()
        response = client.post(
            "/api/finance/transactions/screen/", body, format="json", HTTP_HOST=settings.ALLOWED_HOSTS[0]
        )
        latencies.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.process_time() - cpu) * 1000)
        if server is not None:
            server_ms.append((_db_server_cpu_s() - server) * 1000)
        if response.status_code != 200:
            raise CommandError(
                f"real-time endpoint answered {response.status_code}: {response.content[:300]!r}"
            )
        decisions[response.json()["decision"]] = decisions.get(response.json()["decision"], 0) + 1
        pauses["longest"] = max(pauses["longest"], pauses["ms"])
    gc.callbacks.remove(on_gc)
    lat = np.array(latencies)
    return {
        "single_tx_requests": requests,
        "single_tx_latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "single_tx_latency_ms_p99": round(float(np.percentile(lat, 99)), 2),
        # the calling process's own CPU time per call (the wall figures include waiting for a core)
        "single_tx_cpu_ms_p50": round(float(np.percentile(cpu_ms, 50)), 2),
        "single_tx_cpu_ms_p99": round(float(np.percentile(cpu_ms, 99)), 2),
        # PostgreSQL: the session's server process's CPU time per call (10 ms clock ticks: only the
        # mean means much); null on SQLite, whose work is in the calling process
        "single_tx_db_cpu_ms_mean": round(float(np.mean(server_ms)), 2) if server_ms else None,
        # the longest garbage-collection pause inside one call, and the full collections
        "single_tx_gc_ms_max": round(pauses["longest"], 2),
        "single_tx_gc_full_collections": pauses["full"],
        "single_tx_decisions": decisions,
        "single_tx_load_avg_1m": round(os.getloadavg()[0], 2),
    }


def bench_scale_out(stream: TxTable, *, rows: int, workers: tuple[int, ...], stderr) -> dict:
    """The partitioned import (``finance.screen_file_partition``, one task per payer-account
    partition, ``import_transactions --partitions``) of the first ``rows`` rows, written as a JSON
    file, on ``n`` Celery worker processes started here (prefork, concurrency n, a private queue on
    the configured broker, the bench database) for each n in ``workers``: the wall time from sending
    the partitions to the last result. Each round stores its own copy of the rows (fresh refs,
    shifted 400 days so that rounds are not each other's history)."""
    import subprocess
    import uuid

    from celery import group

    from finance.services.rows import MAX_BATCH_ROWS
    from finance.tasks import screen_file_partition

    part = stream.take(np.arange(min(rows, len(stream), MAX_BATCH_ROWS)))  # a JSON file is one batch
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        url = f"sqlite:///{database['NAME']}"
    else:
        url = "postgres://{USER}:{PASSWORD}@{HOST}:{PORT}/{NAME}".format(
            **{k: database.get(k) or "" for k in ("USER", "PASSWORD", "HOST", "PORT", "NAME")}
        )
    out: dict = {"scale_out_rows": len(part), "scale_out_broker": settings.CELERY_BROKER_URL.split(":")[0]}
    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        for round_no, n in enumerate(workers):
            shift = 400 * DAY * (round_no + 1)
            path = Path(tmp) / f"round{round_no}.json"
            path.write_text(
                json.dumps(
                    [
                        {
                            "tx_ref": f"so{round_no}-{ref}",
                            "ts": int(ts) + shift,
                            "src_account": src,
                            "dst_account": dst,
                            "src_bank": sb,
                            "dst_bank": db,
                            "amount_paid": amount,
                            "currency_paid": cur,
                            "payment_format": fmt,
                            "src_country": sc,
                            "dst_country": dc,
                        }
                        for ref, ts, src, dst, sb, db, amount, cur, fmt, sc, dc in zip(
                            part.tx_ref.tolist(),
                            part.ts.tolist(),
                            part.src_account.tolist(),
                            part.dst_account.tolist(),
                            part.src_bank.tolist(),
                            part.dst_bank.tolist(),
                            part.amount_paid.tolist(),
                            part.currency_paid.tolist(),
                            part.payment_format.tolist(),
                            part.src_country.tolist(),
                            part.dst_country.tolist(),
                            strict=True,
                        )
                    ]
                )
            )
            queue = f"bench-scale-out-{uuid.uuid4().hex[:8]}"
            env = {**os.environ, "DATABASE_URL": url, "CELERY_QUEUE": queue}
            worker = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("celery")),
                    "-A",
                    "suite",
                    "worker",
                    "--pool",
                    "prefork",
                    "--concurrency",
                    str(n),
                    "--queues",
                    queue,
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=settings.BASE_DIR,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                # the worker's start (Django set-up, pool fork, model and list load) is not the
                # import's time: one warm-up row first
                warm = Path(tmp) / f"warm{round_no}.json"
                warm.write_text(
                    json.dumps([{**json.loads(path.read_text())[0], "tx_ref": f"warm{round_no}"}])
                )
                screen_file_partition.apply_async(
                    (str(warm), "json", TEAM, f"warm{round_no}", 0, 1), queue=queue
                ).get(timeout=600)
                batch = f"so{round_no}-{uuid.uuid4().hex[:6]}"
                print(f"scale-out: {len(part):,} rows on {n} worker process(es) ...", file=stderr)
                started = time.perf_counter()
                results = group(
                    screen_file_partition.s(str(path), "json", TEAM, batch, k, 2).set(queue=queue)
                    for k in range(2)
                )()
                done = results.get(timeout=3600)
                elapsed = time.perf_counter() - started
            finally:
                worker.terminate()
                worker.wait(timeout=60)
            out[f"scale_out_{n}_workers_s"] = round(elapsed, 1)
            out[f"scale_out_{n}_workers_tx_per_s"] = round(len(part) / elapsed, 1)
            out[f"scale_out_{n}_workers_alerts"] = sum(d["alerts"] for d in done)
    return out


class Command(BaseCommand):
    help = "Benchmark screening: engine and persisted batch throughput, real-time latency (JSON)."

    def add_arguments(self, parser):
        parser.add_argument("--transactions", type=int, default=1_000_000)
        parser.add_argument("--accounts", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=120)
        parser.add_argument(
            "--batch-rows", type=int, default=100_000, help="rows per transactions_ingest call"
        )
        parser.add_argument(
            "--chunk-rows",
            type=int,
            default=100_000,
            help="rows per engine call inside a batch",
        )
        parser.add_argument(
            "--no-screen-ahead",
            dest="screen_ahead",
            action="store_false",
            help="screen every chunk in this process, in turn (FINANCE_SCREEN_AHEAD off; default: "
            "chunks 1.. of a batch are screened in a second process while this one persists)",
        )
        parser.add_argument(
            "--no-stream",
            dest="stream",
            action="store_false",
            help="one transactions_ingest call per batch (default: one transactions_ingest_batches "
            "call, each batch its own transaction, screening running ahead across batches)",
        )
        parser.add_argument("--named", type=float, default=0.01, help="share of rows naming their parties")
        parser.add_argument("--chunk", type=int, default=100_000, help="engine-only chunk")
        parser.add_argument("--history-days", type=int, default=31, help="engine-only history")
        parser.add_argument("--single", type=int, default=200, help="real-time requests")
        parser.add_argument("--engine", action="store_true", help="also time the engine alone")
        parser.add_argument(
            "--scale-out",
            type=int,
            default=0,
            metavar="ROWS",
            help="also import ROWS rows as 2 account partitions on 1 and on 2 Celery worker processes",
        )
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
            "cpus": len(os.sched_getaffinity(0)),
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
                out["lists"] = _lists(sys.stderr)
                if options["engine"]:
                    out.update(
                        bench_engine(
                            stream, model, chunk=options["chunk"], history_days=options["history_days"]
                        )
                    )
                out.update(
                    bench_batch(
                        stream,
                        batch_rows=options["batch_rows"],
                        chunk_rows=options["chunk_rows"],
                        ahead=options["screen_ahead"],
                        stream_batches=options["stream"],
                        parties=_named_parties(stream, options["named"]),
                        stderr=sys.stderr,
                    )
                )
                if options["single"]:
                    out.update(bench_single(stream, requests=options["single"]))
                if options["scale_out"]:
                    out.update(
                        bench_scale_out(stream, rows=options["scale_out"], workers=(1, 2), stderr=sys.stderr)
                    )
            finally:
                teardown_databases(old, verbosity=0)
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2))
        else:
            self.stdout.write(", ".join(f"{k}={v}" for k, v in out.items() if not isinstance(v, dict)))
