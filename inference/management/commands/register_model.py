from django.core.management.base import BaseCommand, CommandError

from inference import services
from inference.engine.modeldir import ModelDirError
from inference.models import LanguageModel


class Command(BaseCommand):
    help = (
        "Register a local Hugging Face-format model directory (config.json, *.safetensors, tokenizer files), "
        "or with --remote-url a model on an OpenAI-compatible server. Nothing is downloaded; weights load lazily."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", help="Model directory (omit with --remote-url).")
        parser.add_argument("--name", required=True, help="Name clients and the policy use, e.g. medical_qa.")
        parser.add_argument(
            "--quantization", choices=[c for c, _ in LanguageModel.Quantization.choices], default="none"
        )
        parser.add_argument("--draft", help="Registered model to use as the speculative-decoding draft.")
        parser.add_argument("--description", default="")
        parser.add_argument("--max-concurrency", type=int, default=1)
        parser.add_argument(
            "--remote-url", help="Base URL of an OpenAI-compatible server, e.g. http://gpu1:8000/v1"
        )
        parser.add_argument("--remote-model", help="Model id on the remote server (default: --name).")
        parser.add_argument(
            "--api-key-env", default="", help="Environment variable holding the remote API key."
        )

    def handle(self, *args, **options):
        actor = "command:register_model"
        if options["remote_url"]:
            model = services.model_register_remote(
                actor=actor, name=options["name"], base_url=options["remote_url"],
                remote_model=options["remote_model"] or options["name"], api_key_env=options["api_key_env"],
                description=options["description"],
            )  # fmt: skip
            self.stdout.write(
                self.style.SUCCESS(f"Registered remote model {model.name} -> {model.remote_url}")
            )
            return
        if not options["path"]:
            raise CommandError("Give the model directory, or --remote-url for a remote server.")
        if options["draft"] and not LanguageModel.objects.filter(name=options["draft"]).exists():
            raise CommandError(f"No registered model named {options['draft']!r} to use as the draft.")
        try:
            model = services.model_register(
                actor=actor, path=options["path"], name=options["name"], quantization=options["quantization"],
                draft_name=options["draft"], description=options["description"],
                max_concurrency=options["max_concurrency"],
            )  # fmt: skip
        except ModelDirError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Registered {model.name}: {model.architecture}, {model.parameters:,} parameters, "
                f"{model.dtype}, context {model.context_length}, vocabulary {model.vocab_size}"
            )
        )
