"""Token selection and the decode step, plain or speculative.

Speculative decoding proposes several tokens cheaply (a small draft model, or an n-gram found
earlier in the prompt), then the target model scores all of them in one forward pass. Greedy
decoding keeps the longest prefix that matches the target's own argmax, plus the target's next
token, so the output is exactly the target's greedy output. With sampling, the standard
rejection rule (accept with probability min(1, p/q), else resample from max(0, p - q)) keeps the
target's distribution.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import torch

from inference.engine.sessions import SequenceRunner
from inference.engine.types import GenerationParams


class TokenSampler:
    def __init__(self, params: GenerationParams):
        self.params = params
        self.generator = torch.Generator()
        self.generator.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))

    def distribution(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities after temperature, top-k and top-p, row-wise over (..., vocab) logits."""
        scaled = logits / max(self.params.temperature, 1e-5)
        if self.params.top_k and self.params.top_k < scaled.shape[-1]:
            kth = torch.topk(scaled, self.params.top_k, dim=-1).values[..., -1:]
            scaled = scaled.masked_fill(scaled < kth, float("-inf"))
        probs = torch.softmax(scaled, dim=-1)
        if self.params.top_p < 1.0:
            sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
            # Drop a token when the tokens ranked above it already cover top_p (the first always stays).
            drop_sorted = (sorted_probs.cumsum(dim=-1) - sorted_probs) >= self.params.top_p
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            probs = probs.masked_fill(drop, 0.0)
            probs = probs / probs.sum(dim=-1, keepdim=True)
        return probs

    def sample(self, probs: torch.Tensor) -> int:
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.generator))

    def pick(self, logits: torch.Tensor) -> int:
        if self.params.greedy:
            return int(torch.argmax(logits))
        return self.sample(self.distribution(logits))


@dataclass
class Proposal:
    tokens: list[int]
    # Draft distributions per proposed token (sampling with a draft model); None: a deterministic guess.
    draft_probs: torch.Tensor | None = None


class PromptLookupProposer:
    """Guesses the continuation by finding the latest earlier occurrence of the last n tokens."""

    # Single-token matches are mostly coincidences in prose; requiring two halves the wasted
    # verification work at the same accepted count on the demo corpus.
    def __init__(self, *, num_tokens: int = 8, max_ngram: int = 3, min_ngram: int = 2):
        self.num_tokens = num_tokens
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram

    def propose(self, sequence: list[int], limit: int) -> Proposal:
        limit = min(limit, self.num_tokens)
        if limit <= 0:
            return Proposal([])
        tokens = torch.tensor(sequence, dtype=torch.long)
        for n in range(min(self.max_ngram, len(sequence) - 1), self.min_ngram - 1, -1):
            windows = tokens[:-1].unfold(0, n, 1)  # every n-gram that has at least one token after it
            matches = (windows == tokens[-n:]).all(dim=1).nonzero()
            if len(matches):
                start = int(matches[-1]) + n
                return Proposal(sequence[start : start + limit])
        return Proposal([])

    def feedback(self, proposed: int, accepted: int) -> None:
        pass


class DraftModelProposer:
    """A small model sharing the tokenizer drafts tokens one by one from its own KV cache.

    The draft length adapts like transformers' heuristic schedule: +2 after a fully accepted
    round, -1 otherwise; a greedy draft also stops early when it is unsure of its next token.
    """

    def __init__(
        self,
        runner: SequenceRunner,
        sampler: TokenSampler,
        *,
        max_tokens: int = 8,
        initial_tokens: int = 5,
        # Measured on the demo models: 0.2 drafts long enough runs; 0.4 (transformers' default)
        # stops too early and 0.0 wastes verification on hopeless tokens.
        confidence_threshold: float = 0.2,
    ):
        self.runner = runner
        self.sampler = sampler
        self.max_tokens = max_tokens
        self.length = min(initial_tokens, max_tokens)
        self.confidence_threshold = confidence_threshold

    def propose(self, sequence: list[int], limit: int) -> Proposal:
        limit = min(limit, self.length)
        tokens: list[int] = []
        rows: list[torch.Tensor] = []
        greedy = self.sampler.params.greedy
        while len(tokens) < limit:
            logits = self.runner.logits(sequence + tokens, 1)[-1]
            if greedy:
                probs = torch.softmax(logits, dim=-1)
                token = int(torch.argmax(probs))
                tokens.append(token)
                if probs[token] < self.confidence_threshold:
                    break
            else:
                probs = self.sampler.distribution(logits)
                tokens.append(self.sampler.sample(probs))
                rows.append(probs)
        return Proposal(tokens, torch.stack(rows) if rows else None)

    def feedback(self, proposed: int, accepted: int) -> None:
        if proposed and accepted == proposed:
            self.length = min(self.max_tokens, self.length + 2)
        else:
            self.length = max(1, self.length - 1)


@dataclass
class DecodeStats:
    proposed: int = 0
    accepted: int = 0
    target_passes: int = 0


class Decoder:
    """Produces the next tokens of a sequence, one target forward pass per call."""

    def __init__(
        self,
        target: SequenceRunner,
        sampler: TokenSampler,
        *,
        proposer: PromptLookupProposer | DraftModelProposer | None = None,
        context_length: int,
    ):
        self.target = target
        self.sampler = sampler
        self.proposer = proposer
        self.context_length = context_length
        self.stats = DecodeStats()

    def step(self, sequence: list[int], budget: int) -> list[int]:
        """Return between 1 and `budget` tokens that follow `sequence`."""
        # Drafted tokens are fed to the target, so they must fit in its context window.
        room = min(budget - 1, self.context_length - len(sequence))
        proposal = self.proposer.propose(sequence, room) if self.proposer and room > 0 else Proposal([])
        self.stats.target_passes += 1
        if not proposal.tokens:
            return [self.sampler.pick(self.target.logits(sequence, 1)[-1])]
        drafted = proposal.tokens
        logits = self.target.logits(sequence + drafted, len(drafted) + 1)
        if self.sampler.params.greedy:
            accepted = self._accept_greedy(drafted, logits)
        else:
            accepted = self._accept_sampled(drafted, proposal.draft_probs, logits)
        self.stats.proposed += len(drafted)
        self.stats.accepted += len(accepted) - 1
        self.proposer.feedback(len(drafted), len(accepted) - 1)
        return accepted

    @staticmethod
    def _accept_greedy(drafted: list[int], logits: torch.Tensor) -> list[int]:
        choices = torch.argmax(logits, dim=-1).tolist()
        accepted = []
        for draft_token, target_token in zip(drafted, choices, strict=False):
            if draft_token != target_token:
                break
            accepted.append(draft_token)
        # The target's own choice after the accepted prefix comes for free from the same pass.
        accepted.append(choices[len(accepted)])
        return accepted

    def _accept_sampled(
        self, drafted: list[int], draft_probs: torch.Tensor | None, logits: torch.Tensor
    ) -> list[int]:
        target_probs = self.sampler.distribution(logits)
        accepted = []
        for index, token in enumerate(drafted):
            p = target_probs[index]
            q_token = 1.0 if draft_probs is None else float(draft_probs[index, token])
            if self.sampler.uniform() * q_token < float(p[token]):
                accepted.append(token)
                continue
            if draft_probs is None:
                residual = p.clone()
                residual[token] = 0.0
            else:
                residual = torch.clamp(p - draft_probs[index], min=0.0)
            if float(residual.sum()) <= 0.0:
                residual = p
            accepted.append(self.sampler.sample(residual / residual.sum()))
            return accepted
        accepted.append(self.sampler.sample(target_probs[len(drafted)]))
        return accepted
