import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from inference.models import LanguageModel
from inference.tuning.domain_benchmark import corpus_domains, data_adapter_domains, run_benchmark


class Command(BaseCommand):
    help = (
        "Measure LoRA on a local model: trainable fraction, step time and memory against a full fine-tune, "
        "held-out perplexity drop on a domain after a short job (plain and with DP-SGD at epsilon 3), and "
        "what the adapter keeps of the other domains. Progress on stderr; --json prints only JSON on stdout."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model", default="suite-demo", help="A registered local model (default suite-demo)."
        )
        parser.add_argument(
            "--model-dir", default=None, help="A model directory instead of a registered model."
        )
        parser.add_argument(
            "--domain", default=None, help="Target domain (default: the one the model knows least)."
        )
        parser.add_argument("--user", default=None, help="Use the DataAdapters' examples this user may see.")
        parser.add_argument("--steps", type=int, default=60)
        parser.add_argument("--batch-size", type=int, default=8)
        parser.add_argument("--learning-rate", type=float, default=2e-3)
        parser.add_argument("--max-seq-len", type=int, default=256)
        parser.add_argument("--max-examples", type=int, default=400, help="Per domain, spread evenly.")
        parser.add_argument("--epsilon", type=float, default=3.0)
        parser.add_argument("--json", action="store_true", help="Print only the JSON result on stdout.")

    def handle(self, *args, **options):
        from transformers.utils import logging as transformers_logging  # torch with it: only when run

        model_dir = options["model_dir"]
        if model_dir is None:
            model = LanguageModel.objects.filter(
                name=options["model"], backend=LanguageModel.Backend.LOCAL
            ).first()
            if model is None:
                raise CommandError(
                    f"No local model named {options['model']!r}: run `manage.py build_demo_models` or pass --model-dir."
                )
            model_dir = model.path

        transformers_logging.disable_progress_bar()  # stderr carries this command's own progress lines

        def progress(message: str) -> None:
            self.stderr.write(f"[bench_tuning] {message}")
            self.stderr.flush()

        domains = []
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user named {options['user']!r}.")
            domains = data_adapter_domains(user, max_examples=options["max_examples"])
        covered = {domain.app for domain in domains}
        domains += [d for d in corpus_domains(max_examples=options["max_examples"]) if d.app not in covered]
        try:
            result = run_benchmark(
                model_dir=model_dir, domains=domains, target=options["domain"], steps=options["steps"],
                batch_size=options["batch_size"], learning_rate=options["learning_rate"],
                max_seq_len=options["max_seq_len"], epsilon=options["epsilon"], progress=progress,
            )  # fmt: skip
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
            return
        for key in ("target_domain", "lora_trainable_fraction", "lora_step_time_ratio", "lora_peak_memory_ratio",
                    "lora_eval_perplexity_drop", "dp_eps3_eval_perplexity_drop", "dp_spent_epsilon",
                    "dp_step_time_ratio", "kept_worst_perplexity_change", "seconds"):  # fmt: skip
            self.stdout.write(f"{key}: {result[key]}")
        for name, kept in result["kept"].items():
            self.stdout.write(
                f"kept {name}: base {kept['base_perplexity']} -> adapter {kept['lora_perplexity']}"
            )
