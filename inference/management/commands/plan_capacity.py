import json

from django.core.management.base import BaseCommand, CommandError

from inference.engine.capacity import BYTES_PER_PARAMETER, GB, plan, rule_of_thumb_comment
from inference.models import LanguageModel


class Command(BaseCommand):
    help = (
        "Size a model for serving: weight and KV-cache memory, the tensor-parallel degree on common accelerators "
        "and the memory-bandwidth bound on decode speed. Give the shape (--params --layers --hidden --kv-heads) "
        "or --model NAME of a registered model."
    )

    def add_arguments(self, parser):
        parser.add_argument("--model", help="A registered local model: its shape is read from its config.")
        parser.add_argument("--params", type=float, help="Parameter count, e.g. 70e9.")
        parser.add_argument("--layers", type=int)
        parser.add_argument("--hidden", type=int)
        parser.add_argument("--kv-heads", type=int)
        parser.add_argument("--heads", type=int, help="Attention heads (head_dim = hidden / heads).")
        parser.add_argument("--head-dim", type=int)
        parser.add_argument("--context", type=int, default=8192)
        parser.add_argument("--batch", type=int, default=1)
        parser.add_argument("--quant", choices=list(BYTES_PER_PARAMETER), default="fp16")
        parser.add_argument("--headroom", type=float, default=0.15)
        parser.add_argument("--cpu-ram-gb", type=float, default=64.0)
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument(
            "--rule-of-thumb", action="store_true", help="Also review the public sizing rule."
        )

    def handle(self, *args, **options):
        shape = self._shape(options)
        try:
            result = plan(
                **shape, context=options["context"], batch=options["batch"], quant=options["quant"],
                headroom=options["headroom"], cpu_ram_gb=options["cpu_ram_gb"],
            )  # fmt: skip
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        review = rule_of_thumb_comment(context=4096, batch=8) if options["rule_of_thumb"] else None
        if options["json"]:
            data = result.as_dict()
            if review:
                data["rule_of_thumb"] = review.text
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(
            f"{shape['params'] / 1e9:.1f}B parameters, {options['quant']}, context {options['context']}, "
            f"batch {options['batch']}\n"
            f"  weights   {result.weight_bytes / GB:8.1f} GB\n"
            f"  KV cache  {result.kv_cache_bytes / GB:8.1f} GB  ({result.kv_bytes_per_token / 1024:.0f} KiB per token)\n"
            f"  required  {result.required_bytes / GB:8.1f} GB  (with {options['headroom']:.0%} headroom)\n"
        )
        self.stdout.write(
            f"{'accelerator':<22}{'devices':>8}{'GB/device':>11}{'tok/s/seq':>11}{'tok/s total':>13}  note"
        )
        for fit in result.fits:
            devices = "-" if fit.devices is None else str(fit.devices)
            per_device = "-" if fit.memory_per_device_gb is None else f"{fit.memory_per_device_gb:.1f}"
            per_seq = (
                "-"
                if fit.decode_tokens_per_s_per_sequence is None
                else f"{fit.decode_tokens_per_s_per_sequence:.1f}"
            )
            total = "-" if fit.decode_tokens_per_s_total is None else f"{fit.decode_tokens_per_s_total:.0f}"
            self.stdout.write(
                f"{fit.accelerator:<22}{devices:>8}{per_device:>11}{per_seq:>11}{total:>13}  {fit.note}"
            )
        for assumption in result.assumptions:
            self.stdout.write(f"assumption: {assumption}")
        if review:
            self.stdout.write("\n" + review.text)

    def _shape(self, options) -> dict:
        if options["model"]:
            model = LanguageModel.objects.filter(name=options["model"]).first()
            if model is None:
                raise CommandError(f"No registered model named {options['model']!r}.")
            info = model.info
            return {
                "params": float(model.parameter_count),
                "layers": info.get("num_layers"),
                "hidden": info.get("hidden_size"),
                "kv_heads": info.get("num_kv_heads") or info.get("num_attention_heads"),
                "head_dim": info.get("head_dim"),
                "attention_heads": info.get("num_attention_heads"),
            }
        missing = [name for name in ("params", "layers", "hidden", "kv_heads") if options[name] is None]
        if missing:
            raise CommandError(
                "Give --model NAME, or the shape: missing "
                + ", ".join("--" + m.replace("_", "-") for m in missing)
            )
        return {
            "params": options["params"],
            "layers": options["layers"],
            "hidden": options["hidden"],
            "kv_heads": options["kv_heads"],
            "head_dim": options["head_dim"],
            "attention_heads": options["heads"],
        }
