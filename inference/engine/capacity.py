"""Capacity planning for serving a decoder-only LLM (pure arithmetic, torch-free).

Memory = weights + KV cache, with headroom for activations and allocator slack; tensor
parallelism splits both over a power-of-two number of devices. Decode is memory-bound: each step
reads every weight and the whole KV cache once, so bandwidth / bytes-read-per-step bounds the
decode rate from above (real servers reach perhaps 50-80 % of it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GB = 1e9  # decimal gigabytes, as accelerator memory is marketed
BYTES_PER_PARAMETER = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0, "int4": 0.5}
# KV caches stay in 16-bit unless the whole model runs in fp32.
KV_BYTES_PER_VALUE = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 2, "int4": 2}
# Mixed-precision training with Adam: fp16 weights and gradients, fp32 master weights and two moments.
TRAINING_BYTES_PER_PARAMETER = 16.0
MAX_DEVICES_PER_NODE = 8


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_bytes: float
    bandwidth_bytes_per_s: float
    tensor_parallel: bool = True  # False: a single host (CPU) that cannot be split further


ACCELERATORS: tuple[Accelerator, ...] = (
    Accelerator("A100 80GB", 80 * GB, 2.0e12),
    Accelerator("H100 80GB", 80 * GB, 3.35e12),
    Accelerator("H200 141GB", 141 * GB, 4.8e12),
    Accelerator("L40S 48GB", 48 * GB, 0.864e12),
    Accelerator("RTX 4090 24GB", 24 * GB, 1.0e12),
)


@dataclass(frozen=True)
class AcceleratorFit:
    accelerator: str
    memory_gb: float
    devices: int | None  # tensor-parallel degree (power of two); None: does not fit at all
    memory_per_device_gb: float | None
    decode_tokens_per_s_per_sequence: float | None  # bandwidth upper bound
    decode_tokens_per_s_total: float | None  # the same for the whole batch
    note: str = ""


@dataclass(frozen=True)
class CapacityPlan:
    parameters: float
    quantization: str
    context: int
    batch: int
    headroom: float
    weight_bytes: float
    kv_cache_bytes: float
    kv_bytes_per_token: float
    required_bytes: float  # (weights + KV cache) * (1 + headroom)
    fits: list[AcceleratorFit]
    assumptions: list[str] = field(default_factory=list)

    def fit(self, accelerator: str) -> AcceleratorFit:
        return next(f for f in self.fits if f.accelerator == accelerator)

    def as_dict(self) -> dict:
        return asdict(self)


def plan(
    *,
    params: float,
    layers: int,
    hidden: int,
    kv_heads: int,
    head_dim: int | None = None,
    attention_heads: int | None = None,
    context: int,
    batch: int = 1,
    quant: str = "fp16",
    headroom: float = 0.15,
    cpu_ram_gb: float = 64.0,
    cpu_bandwidth_gbps: float = 30.0,
) -> CapacityPlan:
    """Memory and speed bounds for serving `batch` sequences of `context` tokens.

    KV cache = 2 (keys and values) * layers * kv_heads * head_dim * context * batch * bytes.
    Without head_dim, it is hidden / attention_heads; without either, the model is taken to have
    as many KV heads as attention heads (no grouped-query attention), which the plan records.
    """
    if quant not in BYTES_PER_PARAMETER:
        raise ValueError(f"Unknown quantization {quant!r}; expected one of {', '.join(BYTES_PER_PARAMETER)}.")
    if min(params, layers, hidden, kv_heads, context, batch) <= 0 or headroom < 0:
        raise ValueError("Sizes must be positive and headroom must not be negative.")
    assumptions = []
    if head_dim is None:
        if attention_heads is None:
            assumptions.append(
                f"head_dim taken as hidden / kv_heads = {hidden // kv_heads} (no grouped-query attention)"
            )
            head_dim = hidden // kv_heads
        else:
            head_dim = hidden // attention_heads
    if quant == "int4":
        assumptions.append("int4 counts 0.5 byte per weight; group-wise scales add roughly 3-6 % more")
    weight_bytes = params * BYTES_PER_PARAMETER[quant]
    kv_bytes_per_token = 2 * layers * kv_heads * head_dim * KV_BYTES_PER_VALUE[quant]
    kv_cache_bytes = kv_bytes_per_token * context * batch
    required = (weight_bytes + kv_cache_bytes) * (1 + headroom)
    cpu = Accelerator(f"CPU-only {cpu_ram_gb:g} GB RAM", cpu_ram_gb * GB, cpu_bandwidth_gbps * GB, False)
    fits = [
        _fit(accelerator, required, weight_bytes + kv_cache_bytes, batch, kv_heads)
        for accelerator in (*ACCELERATORS, cpu)
    ]
    return CapacityPlan(
        parameters=params,
        quantization=quant,
        context=context,
        batch=batch,
        headroom=headroom,
        weight_bytes=weight_bytes,
        kv_cache_bytes=kv_cache_bytes,
        kv_bytes_per_token=kv_bytes_per_token,
        required_bytes=required,
        fits=fits,
        assumptions=assumptions,
    )


def tensor_parallel_degree(
    required_bytes: float, device_memory_bytes: float, limit: int = 1024
) -> int | None:
    """Smallest power of two whose combined memory holds `required_bytes` (None beyond `limit`)."""
    devices = 1
    while devices * device_memory_bytes < required_bytes:
        devices *= 2
        if devices > limit:
            return None
    return devices


def _fit(accelerator: Accelerator, required: float, bytes_read_per_step: float, batch: int, kv_heads: int):
    limit = 1024 if accelerator.tensor_parallel else 1
    devices = tensor_parallel_degree(required, accelerator.memory_bytes, limit)
    if devices is None:
        return AcceleratorFit(
            accelerator.name, accelerator.memory_bytes / GB, None, None, None, None,
            note=f"needs {required / GB:.0f} GB; does not fit",
        )  # fmt: skip
    notes = []
    if devices > MAX_DEVICES_PER_NODE:
        notes.append(
            f"more than {MAX_DEVICES_PER_NODE} per node: combine with pipeline parallelism across nodes"
        )
    if devices > 1 and kv_heads % devices:
        notes.append(f"{kv_heads} KV heads do not split evenly over {devices} devices (heads get replicated)")
    # Each device reads its shard, all in parallel; communication and kernel overheads are ignored.
    per_sequence = devices * accelerator.bandwidth_bytes_per_s / bytes_read_per_step
    return AcceleratorFit(
        accelerator=accelerator.name,
        memory_gb=accelerator.memory_bytes / GB,
        devices=devices,
        memory_per_device_gb=round(required / devices / GB, 2),
        decode_tokens_per_s_per_sequence=per_sequence,
        decode_tokens_per_s_total=per_sequence * batch,
        note="; ".join(notes),
    )


@dataclass(frozen=True)
class ReferenceModel:
    name: str
    params: float
    layers: int
    hidden: int
    attention_heads: int
    kv_heads: int
    rule_devices: int
    rule_accelerator: str


# The public rule of thumb with nominal sizes (as the rule counts them) and Llama-2 shapes for the
# KV cache (70B uses grouped-query attention with 8 KV heads).
RULE_OF_THUMB: tuple[ReferenceModel, ...] = (
    ReferenceModel("7B", 7e9, 32, 4096, 32, 32, 2, "A100 80GB"),
    ReferenceModel("13B", 13e9, 40, 5120, 40, 40, 4, "A100 80GB"),
    ReferenceModel("70B", 70e9, 80, 8192, 64, 8, 8, "H100 80GB"),
)
RULE_70B_FP32_GB, RULE_70B_4BIT_GB = 280, 70


@dataclass(frozen=True)
class RuleOfThumbRow:
    model: str
    rule: str
    weights_gb: dict[str, float]  # per precision
    inference_devices: dict[str, int | None]  # per precision, on the rule's accelerator
    training_devices: int | None  # full fine-tuning with Adam in mixed precision


@dataclass(frozen=True)
class RuleOfThumbReview:
    rows: list[RuleOfThumbRow]
    text: str

    def __str__(self) -> str:
        return self.text


def rule_of_thumb_comment(
    *, context: int = 4096, batch: int = 8, headroom: float = 0.15
) -> RuleOfThumbReview:
    """Recompute the public sizing rule (7B: 2x A100, 13B: 4x A100, 70B: 8x H100) and say what it means."""
    rows = []
    for reference in RULE_OF_THUMB:
        accelerator = next(a for a in ACCELERATORS if a.name == reference.rule_accelerator)
        weights, devices = {}, {}
        for quant in ("fp32", "fp16", "int8", "int4"):
            sized = plan(
                params=reference.params, layers=reference.layers, hidden=reference.hidden,
                kv_heads=reference.kv_heads, attention_heads=reference.attention_heads,
                context=context, batch=batch, quant=quant, headroom=headroom,
            )  # fmt: skip
            weights[quant] = round(sized.weight_bytes / GB, 1)
            devices[quant] = sized.fit(accelerator.name).devices
        training_bytes = reference.params * TRAINING_BYTES_PER_PARAMETER * (1 + headroom)
        rows.append(
            RuleOfThumbRow(
                model=reference.name,
                rule=f"{reference.rule_devices}x {accelerator.name}",
                weights_gb=weights,
                inference_devices=devices,
                training_devices=tensor_parallel_degree(training_bytes, accelerator.memory_bytes),
            )
        )
    return RuleOfThumbReview(rows=rows, text=_comment(rows, context, batch, headroom))


def _comment(rows: list[RuleOfThumbRow], context: int, batch: int, headroom: float) -> str:
    small, medium, large = rows
    lines = [
        f"Sizing rule checked with {batch} sequences x {context} tokens of KV cache and {headroom:.0%} headroom.",
        f"- 7B -> {small.rule}: fp16 weights are {small.weights_gb['fp16']:.0f} GB, so fp16 inference needs "
        f"{small.inference_devices['fp16']} GPU and even fp32 ({small.weights_gb['fp32']:.0f} GB) needs "
        f"{small.inference_devices['fp32']}. Two GPUs match full fine-tuning with Adam "
        f"(~16 bytes/parameter -> {small.training_devices} GPUs): training-style headroom, not a serving need.",
        f"- 13B -> {medium.rule}: the same pattern; fp16 inference fits "
        f"{medium.inference_devices['fp16']} GPU, full fine-tuning needs {medium.training_devices}.",
        f"- 70B -> {large.rule}: {large.weights_gb['fp32']:.0f} GB of fp32 weights need "
        f"{large.inference_devices['fp32']} GPUs, which is what the rule gives; fp16 ({large.weights_gb['fp16']:.0f} GB) "
        f"needs {large.inference_devices['fp16']}, and full fine-tuning would need "
        f"{large.training_devices} (more than one node).",
        f"- The rule's ~{RULE_70B_FP32_GB} GB of fp32-equivalent weights for 70B checks out "
        f"({large.weights_gb['fp32']:.0f} GB), but its ~{RULE_70B_4BIT_GB} GB 'at 4-bit' is the 8-bit size "
        f"({large.weights_gb['int8']:.0f} GB); 4-bit weights are ~{large.weights_gb['int4']:.0f} GB "
        f"(plus a few percent of scales) and serve from {large.inference_devices['int4']} GPU.",
        "- So the rule mixes regimes: it sizes 7B/13B for training and 70B for fp32-equivalent inference. "
        "For serving, size fp16/bf16 (or quantized) weights plus the KV cache your context and batch need.",
    ]
    return "\n".join(lines)
