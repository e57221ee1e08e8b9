"""A lean decode runtime for small Llama-family draft models.

On a CPU a draft model with a few hundred thousand parameters spends most of each forward pass in
framework overhead (module calls, mask building, output objects), which makes drafting cost a
third of a target pass and eats the speculative speedup. This runtime runs the same weights with a
handful of fused tensor operations and a preallocated KV cache. It only ever proposes tokens: the
target model verifies every one of them, so its small numeric differences can change how many
drafts are accepted, never the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inference.engine.loader import LoadedModel
from inference.engine.sessions import CachedSequence, common_prefix_length

LEAN_MODEL_TYPES = ("llama", "mistral", "qwen2")


def lean_runtime_supported(loaded: LoadedModel) -> bool:
    """Whether `loaded` is a plain CPU Llama-family model this runtime reproduces."""
    config = loaded.model.config
    model_type = getattr(config, "model_type", None)
    if loaded.quantization != "none" or loaded.device.type != "cpu" or loaded.adapters:
        return False
    if model_type not in LEAN_MODEL_TYPES or getattr(config, "hidden_act", "silu") != "silu":
        return False
    if getattr(config, "mlp_bias", False) or (
        model_type != "qwen2" and getattr(config, "attention_bias", False)
    ):
        return False
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", False) or (window and window < config.max_position_embeddings):
        return False
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return rope.get("rope_type", "default") in ("default", "linear")


@dataclass(frozen=True)
class LeanLayer:
    input_norm: torch.Tensor
    qkv_weight: torch.Tensor
    qkv_bias: torch.Tensor | None
    o_weight: torch.Tensor
    post_norm: torch.Tensor
    gate_up_weight: torch.Tensor
    down_weight: torch.Tensor


class LeanLlama:
    """The draft's weights rearranged for few, fused operations (built once per loaded model)."""

    def __init__(self, model: torch.nn.Module):
        config = model.config
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads or self.num_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.eps = config.rms_norm_eps
        self.max_positions = config.max_position_embeddings
        self.hidden_size = config.hidden_size
        body = model.model
        self.embed = body.embed_tokens.weight.detach()
        self.final_norm = body.norm.weight.detach()
        self.lm_head = model.lm_head.weight.detach()
        self.layers = []
        for layer in body.layers:
            attention, mlp = layer.self_attn, layer.mlp
            biases = [attention.q_proj.bias, attention.k_proj.bias, attention.v_proj.bias]
            self.layers.append(
                LeanLayer(
                    input_norm=layer.input_layernorm.weight.detach(),
                    qkv_weight=torch.cat(
                        [attention.q_proj.weight, attention.k_proj.weight, attention.v_proj.weight]
                    ).detach(),
                    qkv_bias=torch.cat(biases).detach() if biases[0] is not None else None,
                    o_weight=attention.o_proj.weight.detach(),
                    post_norm=layer.post_attention_layernorm.weight.detach(),
                    gate_up_weight=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]).detach(),
                    down_weight=mlp.down_proj.weight.detach(),
                )
            )
        positions = torch.arange(self.max_positions)[None]
        cos, sin = body.rotary_emb(self.embed[:1], positions)
        self.cos, self.sin = cos[0].detach(), sin[0].detach()  # (positions, head_dim)
        half = self.head_dim // 2
        # rotate_half(x) == x @ rotation: one matmul instead of slicing and concatenating.
        rotation = torch.zeros(self.head_dim, self.head_dim)
        rotation[torch.arange(half) + half, torch.arange(half)] = -1.0
        rotation[torch.arange(half), torch.arange(half) + half] = 1.0
        self.rotation = rotation

    def new_cache(self, capacity: int) -> LeanKVCache:
        shape = (len(self.layers), 1, self.num_kv_heads, min(capacity, self.max_positions), self.head_dim)
        return LeanKVCache(torch.zeros(shape), torch.zeros(shape))

    def forward(self, tokens: list[int], cache: LeanKVCache, start: int, num_logits: int) -> torch.Tensor:
        count = len(tokens)
        end = start + count
        cache.reserve(end, self.max_positions)
        x = self.embed[torch.tensor(tokens)]  # (count, hidden)
        cos, sin = self.cos[start:end], self.sin[start:end]
        mask = None
        if count > 1:
            # Row i (position start + i) sees every cached position up to and including its own.
            mask = torch.ones(count, end, dtype=torch.bool).tril(diagonal=start)
        q_size = self.num_heads * self.head_dim
        kv_size = self.num_kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            h = F.rms_norm(x, (self.hidden_size,), layer.input_norm, self.eps)
            qkv = F.linear(h, layer.qkv_weight, layer.qkv_bias)
            heads = qkv[:, : q_size + kv_size].view(count, -1, self.head_dim).transpose(0, 1)
            heads = heads * cos + (heads @ self.rotation) * sin
            q, k = heads[: self.num_heads], heads[self.num_heads :]
            v = qkv[:, q_size + kv_size :].view(count, self.num_kv_heads, self.head_dim).transpose(0, 1)
            cache.keys[index, 0, :, start:end] = k
            cache.values[index, 0, :, start:end] = v
            attended = F.scaled_dot_product_attention(
                q[None],
                cache.keys[index, :, :, :end],
                cache.values[index, :, :, :end],
                attn_mask=mask,
                enable_gqa=self.num_heads != self.num_kv_heads,
            )
            x = x + F.linear(attended[0].transpose(0, 1).reshape(count, q_size), layer.o_weight)
            h = F.rms_norm(x, (self.hidden_size,), layer.post_norm, self.eps)
            gate, up = F.linear(h, layer.gate_up_weight).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down_weight)
        x = F.rms_norm(x[-num_logits:], (self.hidden_size,), self.final_norm, self.eps)
        return F.linear(x, self.lm_head)


class LeanKVCache:
    def __init__(self, keys: torch.Tensor, values: torch.Tensor):
        self.keys = keys  # (layers, 1, kv_heads, capacity, head_dim)
        self.values = values

    def reserve(self, length: int, max_positions: int) -> None:
        capacity = self.keys.shape[3]
        if length <= capacity:
            return
        grown = min(max_positions, max(length, 2 * capacity))
        pad = (0, 0, 0, grown - capacity)
        self.keys, self.values = F.pad(self.keys, pad), F.pad(self.values, pad)

    def nbytes(self) -> int:
        return 2 * self.keys.numel() * self.keys.element_size()


class LeanDraftRunner:
    """Same contract as SequenceRunner (logits for a token sequence, cache kept aligned to it)."""

    def __init__(self, loaded: LoadedModel, cached: CachedSequence | None = None):
        self.lean = loaded.derived.get("lean_llama")
        if self.lean is None:
            self.lean = loaded.derived.setdefault("lean_llama", LeanLlama(loaded.model))
        if cached is None or not isinstance(cached.cache, LeanKVCache):
            cached = CachedSequence()
        self.cached = cached
        self.consistent = True

    @torch.inference_mode()
    def logits(self, token_ids: list[int], num_logits: int = 1) -> torch.Tensor:
        keep = min(common_prefix_length(self.cached.token_ids, token_ids), len(token_ids) - num_logits)
        if self.cached.cache is None:
            self.cached.cache = self.lean.new_cache(max(256, 2 * len(token_ids)))
        self.consistent = False
        logits = self.lean.forward(token_ids[keep:], self.cached.cache, keep, num_logits)
        self.cached.token_ids = list(token_ids)
        self.consistent = True
        return logits
