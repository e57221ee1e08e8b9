import time

from django.conf import settings
from django.core.management.base import BaseCommand

from inference.datasets import iter_corpus

DEMO_NAME = "suite-demo"
DRAFT_NAME = "suite-demo-draft"


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

    def handle(self, *args, **options):
        from inference import services
        from inference.demo import build_demo_models

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
        services.model_register(actor=actor, path=result["draft_dir"], name=DRAFT_NAME,
                                description="Demo draft model (speculative decoding)")  # fmt: skip
        model = services.model_register(
            actor=actor, path=result["target_dir"], name=DEMO_NAME, draft_name=DRAFT_NAME,
            description="Demo Llama trained here on DICOM, maintenance and AML text",
        )  # fmt: skip
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {model.name} ({model.parameter_count:,} parameters) and {DRAFT_NAME}."
            )
        )
