"""`python manage.py bench_inference --json`: engine figures side by side, plus the API's own overhead."""

import json
import statistics
import sys
import time

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test import Client
from knox.models import AuthToken

from accounts.models import User
from accounts.roles import Role
from inference import runtime
from inference.engine import bench_llamacpp
from inference.engine.types import GenerationParams
from inference.models import LanguageModel
from inference.registry import default_model

# inference.engine.bench imports torch at its top: loaded in handle(), when that benchmark runs.


class Command(BaseCommand):
    help = (
        "Benchmark the serving engine on a registered model and its draft (default: the demo models): decode "
        "speed, time to first token, KV reuse over 10 turns, speculative and prompt-lookup decoding (identical "
        "outputs asserted), int8 memory/speed/perplexity, and the OpenAI endpoint's overhead over the engine."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model", default=None, help="Registered model (default: the default chat model)."
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
        parser.add_argument("--repeats", type=int, default=3)
        parser.add_argument("--api-requests", type=int, default=20)
        parser.add_argument("--threads", type=int, default=0, help="llama.cpp/torch threads (0: all cores).")
        parser.add_argument("--no-transformers", action="store_true", help="Skip transformers generate().")
        parser.add_argument(
            "--perplexity-tokens", type=int, default=bench_llamacpp.PERPLEXITY_TOKENS,
            help="Held-out tokens scored per quantization (GGUF models).",
        )  # fmt: skip
        parser.add_argument(
            "--quantizations-only", action="store_true",
            help="GGUF models: only the quantizations' size, decode rate and perplexity.",
        )  # fmt: skip

    def handle(self, *args, **options):
        from inference.engine.bench import run_engine_benchmarks

        if options["model"] is None:
            default = default_model("chat")
            options["model"] = default.name if default else "suite-demo"
        model = LanguageModel.objects.select_related("draft").filter(name=options["model"]).first()
        if model is not None and model.gguf_path:
            self._llamacpp(model, options)
            return
        if model is None or model.backend != LanguageModel.Backend.LOCAL:
            raise CommandError(
                f"No local model named {options['model']!r}: run `manage.py build_demo_models`."
            )
        if model.draft is None:
            raise CommandError(f"{model.name} has no draft model for speculative decoding.")

        def progress(stage, step, total):
            print(f"[{stage}] {step}/{total}", file=sys.stderr, flush=True)

        figures = run_engine_benchmarks(
            model.path, model.draft.path, progress=progress, repeats=options["repeats"]
        )
        figures["api_overhead_ms_p50"] = self._api_overhead(model, options["api_requests"], progress)
        figures["model"] = model.name
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            for key, value in figures.items():
                self.stdout.write(f"{key:36} {value}")

    def _llamacpp(self, model, options) -> None:
        threads = options["threads"] or bench_llamacpp.default_threads()
        settings.INFERENCE_LLAMACPP_THREADS = threads  # the /v1 endpoint's engine uses the same count

        def progress(stage, step, total):
            print(f"[{stage}] {step}/{total}", file=sys.stderr, flush=True)

        if options["quantizations_only"]:
            figures = bench_llamacpp.quantizations(
                model, threads=threads, repeats=options["repeats"], progress=progress,
                tokens=options["perplexity_tokens"], flash_attn=settings.INFERENCE_LLAMACPP_FLASH_ATTN,
            )  # fmt: skip
        else:
            figures = bench_llamacpp.run(
                model, threads=threads, repeats=options["repeats"], api_requests=options["api_requests"],
                progress=progress, with_transformers=not options["no_transformers"],
                perplexity_tokens=options["perplexity_tokens"], flash_attn=settings.INFERENCE_LLAMACPP_FLASH_ATTN,
            )  # fmt: skip
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            for key, value in figures.items():
                self.stdout.write(f"{key:40} {value}")

    def _api_overhead(self, model, requests: int, progress) -> float:
        """Median of (endpoint latency - engine latency) for the same prompt, measured alternately.

        The endpoint path runs everything a client pays for (authentication, validation, policy,
        admission, engine, Generation row and trail event in one transaction, JSON) on a scratch
        transaction that is rolled back, so the benchmark leaves nothing behind."""
        body = {
            "model": model.name,
            "prompt": "Work order WO1 on Chiller 3",
            "max_tokens": 8,
            "temperature": 0,
        }
        params = GenerationParams(max_tokens=8)
        engine = runtime.served(model).engine
        deltas = []
        with transaction.atomic():
            user = User.objects.create(username=f"bench-{time.time_ns()}")
            user.groups.add(Group.objects.get_or_create(name=Role.ML_ENGINEER.value)[0])
            _, key = AuthToken.objects.create(user=user)
            client = Client(HTTP_HOST="localhost")
            headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
            for index in range(requests + 2):
                started = time.perf_counter()
                engine.generate(body["prompt"], params)
                engine_s = time.perf_counter() - started
                started = time.perf_counter()
                response = client.post(
                    "/v1/completions", data=body, content_type="application/json", **headers
                )
                endpoint_s = time.perf_counter() - started
                if response.status_code != 200:
                    raise CommandError(
                        f"The endpoint answered {response.status_code}: {response.content[:200]!r}"
                    )
                if index >= 2:  # the first requests warm caches
                    deltas.append((endpoint_s - engine_s) * 1000)
                progress("api overhead", index + 1, requests + 2)
            transaction.set_rollback(True)
        return round(statistics.median(deltas), 2)
