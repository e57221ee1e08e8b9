import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference import services
from inference.engine import importer
from inference.engine.modeldir import ModelDirError
from inference.engine.quantization import IMATRIX_WINDOWS
from inference.engine.types import ModelLoadError


class Command(BaseCommand):
    help = (
        "Import a model into MODEL_ROOT and register it. A GGUF file: kept as read (served by llama.cpp), "
        "quantized with llama.cpp's quantizer (default q8_0 and q4_k_m, from an f16 copy), and turned into a "
        "Hugging Face safetensors directory for training and evaluation. A Hugging Face directory: copied "
        "(served by transformers). Every written form is checked for identical greedy output."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", help="A .gguf file or a Hugging Face model directory.")
        parser.add_argument(
            "--name", required=True, help="Name clients and the policy use, e.g. smollm2-135m."
        )
        parser.add_argument("--quantize", default="q8_0,q4_k_m", help="Comma-separated, or 'none'.")
        parser.add_argument("--serve", default=None, help="Which GGUF to serve (default: the one imported).")
        parser.add_argument(
            "--no-hf", action="store_true", help="Skip the Hugging Face directory (no LoRA jobs)."
        )
        parser.add_argument(
            "--licence", default=None, help="Licence of the weights (default: from the GGUF)."
        )
        parser.add_argument("--description", default="")
        parser.add_argument("--threads", type=int, default=0, help="Quantizer threads (0: all cores).")
        parser.add_argument(
            "--imatrix", type=int, default=IMATRIX_WINDOWS, metavar="WINDOWS",
            help="Weight the k-quants (q4_k_m) by an importance matrix from WINDOWS x 512 tokens of "
            f"calibration text (default {IMATRIX_WINDOWS}; needs the Hugging Face directory). "
            "0: plain llama.cpp quantization.",
        )  # fmt: skip
        parser.add_argument("--root", default=None, help="Folder (default MODEL_ROOT).")

    def handle(self, *args, **options):
        source = Path(options["source"])
        root = Path(options["root"] or settings.MODEL_ROOT)

        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        try:
            if source.is_file():
                quantizations = tuple(
                    q.strip() for q in options["quantize"].split(",") if q.strip() not in ("", "none")
                )
                result = importer.import_gguf(
                    source, name=options["name"], root=root, quantizations=quantizations,
                    with_hf=not options["no_hf"], serve=options["serve"], threads=options["threads"],
                    imatrix_windows=options["imatrix"], progress=progress,
                )  # fmt: skip
            elif source.is_dir():
                result = importer.import_hf_dir(source, name=options["name"], root=root, progress=progress)
            else:
                raise CommandError(f"{source} is neither a GGUF file nor a model directory.")
        except (ModelDirError, ModelLoadError) as exc:
            raise CommandError(str(exc)) from None
        try:
            model = services.model_import_register(
                actor="command:import_model", result=result, licence=options["licence"],
                description=options["description"],
            )  # fmt: skip
        except (ModelDirError, ModelLoadError, services.RegistrationRefused) as exc:
            raise CommandError(str(exc)) from None
        engine = "llama.cpp" if model.gguf_path else "transformers"
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {model.name}: {model.parameters:,} parameters, {model.quantization}, "
                f"licence {model.licence or 'unknown'}, served by {engine}; "
                f"files: {', '.join(sorted(result.gguf_files)) or 'hf'}; checks: {result.checks}"
            )
        )
