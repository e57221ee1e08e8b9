"""Load on loopback: concurrent API clients against four endpoints at once, for a bounded time.

Chat completions (/v1/chat/completions), real-time transaction screening, DICOM question answering
and work-order creation are driven together by asyncio clients (httpx2) against a real gunicorn
server (`serve_web`, started here on a free loopback port unless --url names a running one), as the
demo users (bootstrap_demo) with short-lived API tokens issued for the run and revoked after it.

Two phases:
  admitted   per endpoint as many clients as the admission control admits (the model's slots plus
             its queue for the two model endpoints; --clients for the others): the target is no
             error at all.
  overload   the chat endpoint alone with more clients than the model admits: the excess must be
             refused at once with 429 and Retry-After, never a 5xx.

`errors` (top level) counts 5xx answers, failed requests (connection errors, time-outs) and any
other unexpected answer (a 4xx other than 429, a 429 without Retry-After), over both phases.
The server this command starts gets enough threads that its thread pool does not hide the model's
admission control (a smaller pool queues requests in the socket backlog instead of refusing them).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import httpx2 as httpx  # the maintained httpx line (huggingface_hub needs it too)
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from accounts.tokens import token_issue, token_revoke

logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request otherwise
MANAGE = str(Path(settings.BASE_DIR) / "manage.py")
CHAT, SCREEN, QA, WORK_ORDERS = "chat_completions", "transaction_screening", "dicom_qa", "work_order_create"


def _run_loop(coroutine):
    """asyncio.run in a thread of its own: the clients need their own event loop, and the calling
    thread may already run one (a caller inside Playwright's sync API or an async test runner)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-load") as pool:
        return pool.submit(asyncio.run, coroutine).result()


@dataclass
class Tally:
    """What one endpoint's clients saw during one phase."""

    clients: int
    latencies_ms: list[float] = field(default_factory=list)  # successful (2xx) requests only
    statuses: dict[str, int] = field(default_factory=dict)  # status code (or "failed") -> count
    refused: int = 0  # 429 with Retry-After
    retry_after_s: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def count(self, status: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def note_error(self, text: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(text[:300])

    def report(self, seconds: float) -> dict:
        ok = sorted(self.latencies_ms)
        return {
            "clients": self.clients,
            "requests": sum(self.statuses.values()),
            "succeeded": len(ok),
            "throughput_rps": round(len(ok) / seconds, 2) if seconds else 0.0,
            "p50_ms": _percentile(ok, 50),
            "p99_ms": _percentile(ok, 99),
            "refused_429": self.refused,
            "retry_after_s_max": max(self.retry_after_s) if self.retry_after_s else None,
            "errors": self.errors,
            "statuses": dict(sorted(self.statuses.items())),
            "error_samples": self.error_samples,
        }


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return None
    rank = max(1, math.ceil(q / 100 * len(values)))
    return round(values[rank - 1], 2)


class Command(BaseCommand):
    help = (
        "Concurrent API clients on loopback for a bounded time against chat completions, real-time "
        "screening, DICOM QA and work-order creation; throughput, p50, p99, errors per endpoint."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print the result as JSON only.")
        parser.add_argument("--seconds", type=float, default=20.0, help="Length of each phase (20).")
        parser.add_argument("--clients", type=int, default=4, help="Screening and work-order clients (4).")
        parser.add_argument(
            "--model-clients",
            type=int,
            default=0,
            help="Clients per model endpoint in the admitted phase (default: the model's slots plus queue).",
        )
        parser.add_argument(
            "--overload-extra", type=int, default=4, help="Chat clients beyond what the model admits (4)."
        )
        parser.add_argument("--max-tokens", type=int, default=16, help="Tokens per chat completion (16).")
        parser.add_argument("--timeout", type=float, default=120.0, help="Per-request time-out in seconds.")
        parser.add_argument("--url", default="", help="A running server's base URL (default: start one).")
        parser.add_argument("--model", default="", help="Chat model name (default: the first one listed).")
        parser.add_argument("--study", type=int, default=0, help="Study id (default: the first one listed).")
        parser.add_argument("--machine", type=int, default=0, help="Machine id (default: a work order's).")
        parser.add_argument("--team", default="", help="Finance team (default: the screening user's).")
        parser.add_argument("--chat-user", default="mlengineer")
        parser.add_argument("--qa-user", default="radiologist")
        parser.add_argument("--screen-user", default="compliance")
        parser.add_argument("--work-order-user", default="maintenance")

    def handle(self, *args, **options):
        for name in ("seconds", "timeout"):
            if options[name] <= 0:
                raise CommandError(f"--{name} must be positive.")
        users = {}
        for endpoint, option in ((CHAT, "chat_user"), (QA, "qa_user"), (SCREEN, "screen_user"),
                                 (WORK_ORDERS, "work_order_user")):  # fmt: skip
            user = get_user_model().objects.filter(username=options[option], is_active=True).first()
            if user is None:
                flag = "--" + option.replace("_", "-")
                raise CommandError(
                    f"No active user {options[option]!r} for {endpoint}: run `manage.py bootstrap_demo` "
                    f"or name one with {flag}."
                )
            users[endpoint] = user
        issued, server, threads = [], None, 0
        try:
            keys = {}
            for endpoint, user in users.items():
                instance, key = token_issue(user=user, ttl=timedelta(hours=1))
                issued.append((user, instance.token_key))
                keys[endpoint] = key
            url = options["url"].rstrip("/")
            if not url:
                threads = SERVER_THREADS
                server, url = _start_server(threads)
            targets = _run_loop(_targets(url, keys, options, users[SCREEN]))
            admitted = targets["model_slots"] + targets["model_queue"]
            clients = {
                CHAT: options["model_clients"] or admitted,
                QA: options["model_clients"] or admitted,
                SCREEN: options["clients"],
                WORK_ORDERS: options["clients"],
            }
            overload = {CHAT: admitted + options["overload_extra"]}
            # One request per endpoint first: the model loads on its first request (seconds), which
            # belongs to start-up, not to the latencies under load.
            warmup = _run_loop(_warm_up(url, keys, targets, options["timeout"], options["max_tokens"]))
            run = {"url": url, "keys": keys, "targets": targets, "seconds": options["seconds"],
                   "timeout": options["timeout"], "max_tokens": options["max_tokens"]}  # fmt: skip
            phases = {
                "admitted": _run_loop(_phase(clients=clients, **run)),
                "overload": _run_loop(_phase(clients=overload, **run)),
            }
        finally:
            for user, prefix in issued:
                token_revoke(user=user, token_prefix=prefix)
            if server is not None:
                _stop_server(server)
        result = {
            "errors": sum(t["errors"] for phase in phases.values() for t in phase["endpoints"].values()),
            "warmup_ms": warmup,
            "phases": phases,
            "admission": {
                "model": targets["model"],
                "model_max_concurrency": targets["model_slots"],
                "model_max_queue": targets["model_queue"],
                "inference_rate_per_user": settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["inference"],
                "web_threads": threads or None,
                "refusal": "429 with Retry-After beyond the model's slots plus queue, and beyond the "
                "per-user inference rate",
            },
            "server": f"serve_web (gunicorn gthread, {threads} threads) on loopback" if threads else url,
            "database": connection.vendor,
            "cpu_count": os.cpu_count(),
        }
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        for name, phase in phases.items():
            self.stdout.write(f"{name} ({phase['seconds']} s):")
            for endpoint, tally in phase["endpoints"].items():
                self.stdout.write(
                    f"  {endpoint:<22} clients {tally['clients']:>3}  {tally['throughput_rps']:>7} req/s  "
                    f"p50 {tally['p50_ms']} ms  p99 {tally['p99_ms']} ms  429 {tally['refused_429']}  "
                    f"errors {tally['errors']}"
                )
        self.stdout.write(f"errors: {result['errors']}")


# --- the server ------------------------------------------------------------------------------
SERVER_THREADS = 64


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_server(threads: int) -> tuple[subprocess.Popen, str]:
    """`manage.py serve_web` on a free loopback port, on this process's database and settings."""
    port = _free_port()
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", settings.SETTINGS_MODULE)
    env["DATABASE_URL"] = _database_url()  # the database this process uses, e.g. a test database
    process = subprocess.Popen(
        [
            sys.executable,
            MANAGE,
            "serve_web",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            "--threads",
            str(threads),
        ],  # fmt: skip
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=settings.BASE_DIR,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"The web server did not start: {process.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, url
        except OSError:
            time.sleep(0.2)
    _stop_server(process)
    raise CommandError("The web server did not listen within 60 s.")


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user, password = quote(db.get("USER") or ""), quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if process.stderr:
        process.stderr.close()


# --- what the clients ask ---------------------------------------------------------------------
def _headers(key: str) -> dict:
    return {"Authorization": f"Token {key}", "Accept": "application/json"}


def _results(body) -> list:
    return body["results"] if isinstance(body, dict) and "results" in body else body


async def _targets(url: str, keys: dict, options: dict, screen_user) -> dict:
    """The model, study, machine and team the clients use, found over the API as their users see them."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        models = (await client.get("/api/models/", headers=_headers(keys[CHAT]))).json()
        if not isinstance(models, list) or not models:
            raise CommandError(f"No model is served to the chat user ({models!r}): run build_demo_models.")
        wanted = options["model"]
        model = next((m for m in models if m["name"] == wanted), None) if wanted else models[0]
        if model is None:
            raise CommandError(f"No model {wanted!r}; served: {', '.join(m['name'] for m in models)}.")
        study = options["study"]
        if not study:
            listed = _results((await client.get("/api/medical/studies/", headers=_headers(keys[QA]))).json())
            if not listed:
                raise CommandError("No study is visible to the QA user: run bootstrap_demo or pass --study.")
            study = listed[0]["id"]
        machine = options["machine"]
        if not machine:
            response = await client.get(
                "/api/manufacturing/work-orders/", headers=_headers(keys[WORK_ORDERS])
            )
            machines = [order["machine"] for order in _results(response.json()) if order.get("machine")]
            if not machines:
                raise CommandError("No work order shows a machine to the work-order user: pass --machine.")
            machine = machines[0]
    return {
        "model": model["name"],
        "model_slots": int(model.get("max_concurrency") or 1),
        "model_queue": int(model.get("max_queue") or 0),
        "study": study,
        "machine": machine,
        "team": options["team"] or getattr(screen_user, "department", "") or "",
    }


def _request(endpoint: str, targets: dict, max_tokens: int) -> tuple[str, dict]:
    """(path, JSON body) of one request; every screened transaction and work order is a new one."""
    if endpoint == CHAT:
        return "/v1/chat/completions", {
            "model": targets["model"],
            "messages": [{"role": "user", "content": "Which failure code applies to a leaking pump seal?"}],
            "max_tokens": max_tokens,
            "temperature": 0,
        }
    if endpoint == QA:
        return f"/api/medical/studies/{targets['study']}/ask/", {"question": "What is the slice thickness?"}
    if endpoint == SCREEN:
        return "/api/finance/transactions/screen/", {
            "team": targets["team"],
            "transaction": {
                "tx_ref": f"load-{uuid.uuid4().hex[:20]}",
                "ts": int(time.time()),
                "src_account": "LOAD-A-1",
                "dst_account": f"LOAD-B-{uuid.uuid4().int % 50}",
                "amount_paid": 1250.0,
                "currency_paid": "EUR",
                "payment_format": "Wire",
            },
        }
    return "/api/manufacturing/work-orders/", {
        "machine": targets["machine"],
        "title": f"Load test inspection {uuid.uuid4().hex[:8]}",
        "description": "Created by bench_load.",
        "priority": 4,  # low
    }


async def _warm_up(url: str, keys: dict, targets: dict, timeout: float, max_tokens: int) -> dict:
    """Each endpoint once, in turn: {endpoint: milliseconds}; a failure here stops the run."""
    took = {}
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
        for endpoint in (CHAT, QA, SCREEN, WORK_ORDERS):
            path, body = _request(endpoint, targets, max_tokens)
            started = time.perf_counter()
            response = await http.post(path, json=body, headers=_headers(keys[endpoint]))
            if not 200 <= response.status_code < 300:
                raise CommandError(f"Warm-up {endpoint}: {response.status_code} {response.text[:300]}")
            took[endpoint] = round((time.perf_counter() - started) * 1000, 1)
    return took


async def _client(
    http, endpoint: str, tally: Tally, key: str, targets: dict, deadline: float, max_tokens: int
):

    while time.monotonic() < deadline:
        path, body = _request(endpoint, targets, max_tokens)
        started = time.perf_counter()
        try:
            response = await http.post(path, json=body, headers=_headers(key))
        except httpx.HTTPError as exc:
            tally.count("failed")
            tally.note_error(f"{type(exc).__name__}: {exc}")
            continue
        elapsed_ms = (time.perf_counter() - started) * 1000
        status = response.status_code
        tally.count(str(status))
        if 200 <= status < 300:
            tally.latencies_ms.append(elapsed_ms)
        elif status == 429 and response.headers.get("Retry-After", "").isdigit():
            tally.refused += 1
            retry = float(response.headers["Retry-After"])
            tally.retry_after_s.append(retry)
            # A well-behaved client honours Retry-After (bounded by the phase).
            await asyncio.sleep(min(retry, max(0.0, deadline - time.monotonic())))
        else:
            tally.note_error(f"{status} {path}: {response.text[:200]}")


async def _phase(
    *, url, keys, targets, clients: dict, seconds: float, timeout: float, max_tokens: int
) -> dict:

    total = sum(clients.values())
    tallies = {endpoint: Tally(clients=count) for endpoint, count in clients.items()}
    limits = httpx.Limits(max_connections=total + 4, max_keepalive_connections=total)
    started = time.monotonic()
    deadline = started + seconds
    async with httpx.AsyncClient(base_url=url, timeout=timeout, limits=limits) as http:
        await asyncio.gather(
            *(
                _client(http, endpoint, tallies[endpoint], keys[endpoint], targets, deadline, max_tokens)
                for endpoint, count in clients.items()
                for _ in range(count)
            )
        )
    elapsed = time.monotonic() - started  # requests in flight at the deadline finish: the real span
    return {
        "seconds": round(elapsed, 2),
        "endpoints": {endpoint: tally.report(elapsed) for endpoint, tally in tallies.items()},
    }
