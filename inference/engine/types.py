"""Plain data shared by every engine backend and by the Django layer.

Torch-free on purpose: the Django layer imports these names at start-up, while the modules that
run models are imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]
SpeculativeMode = Literal["none", "draft", "prompt_lookup"]
FinishReason = Literal["stop", "length"]
Quantization = Literal["none", "int8", "int4"]

SPECULATIVE_MODES: tuple[str, ...] = ("none", "draft", "prompt_lookup")
QUANTIZATIONS: tuple[str, ...] = ("none", "int8", "int4")
ROLES: tuple[str, ...] = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidRequest(f"Unknown chat role {self.role!r}; expected one of {', '.join(ROLES)}.")
        if not isinstance(self.content, str):
            raise InvalidRequest("Chat message content must be a string.")

    @classmethod
    def coerce(cls, message: ChatMessage | dict) -> ChatMessage:
        if isinstance(message, ChatMessage):
            return message
        try:
            return cls(role=message["role"], content=message["content"])
        except (KeyError, TypeError) as exc:
            raise InvalidRequest("Each chat message needs a 'role' and a 'content'.") from exc

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class GenerationParams:
    """What a caller may ask of one generation. temperature 0 means greedy decoding."""

    max_tokens: int = 128
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    speculative: SpeculativeMode = "none"
    adapter: str | None = None
    # How many tokens one speculative round may propose at most (the draft model adapts below it).
    num_speculative_tokens: int = 8

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise InvalidRequest("max_tokens must be at least 1.")
        if self.temperature < 0:
            raise InvalidRequest("temperature must not be negative.")
        if not 0 < self.top_p <= 1:
            raise InvalidRequest("top_p must be in (0, 1].")
        if self.top_k < 0:
            raise InvalidRequest("top_k must not be negative (0 disables it).")
        if self.speculative not in SPECULATIVE_MODES:
            raise InvalidRequest(
                f"Unknown speculative mode {self.speculative!r}; expected one of {', '.join(SPECULATIVE_MODES)}."
            )
        if self.num_speculative_tokens < 1:
            raise InvalidRequest("num_speculative_tokens must be at least 1.")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise InvalidRequest("Stop sequences must be non-empty strings.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: FinishReason
    cached_prompt_tokens: int = 0
    ttft_s: float = 0.0
    total_s: float = 0.0
    draft_tokens_proposed: int = 0
    draft_tokens_accepted: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        if not self.draft_tokens_proposed:
            return None
        return self.draft_tokens_accepted / self.draft_tokens_proposed

    @property
    def decode_tokens_per_s(self) -> float | None:
        decode_s = self.total_s - self.ttft_s
        if self.completion_tokens < 2 or decode_s <= 0:
            return None
        # The first token arrives at ttft; the remaining ones are the decode phase.
        return (self.completion_tokens - 1) / decode_s


class EngineError(Exception):
    """Base of every error an engine raises on purpose; the message is meant for a person."""


class InvalidRequest(EngineError):
    """The request itself is malformed (bad parameter, unknown role, unknown adapter)."""


class ContextLengthExceeded(InvalidRequest):
    def __init__(self, limit: int, got: int):
        self.limit = limit
        self.got = got
        super().__init__(
            f"The prompt is {got} tokens long but the model's context length is {limit} tokens; "
            "shorten the conversation or the attached context."
        )


class ModelLoadError(EngineError):
    """A model directory exists but cannot be turned into a usable model."""


class QuantizationUnavailable(ModelLoadError):
    """The requested quantization cannot run on this machine."""


class AdapterError(EngineError):
    """A LoRA adapter is unknown, unreadable or incompatible with its base model."""


class Overloaded(EngineError):
    """Too many requests are queued for a model; the caller should retry later."""

    def __init__(self, retry_after_s: float, message: str | None = None):
        self.retry_after_s = retry_after_s
        super().__init__(message or f"The model is busy; retry in about {retry_after_s:.0f} s.")


class RemoteEngineError(EngineError):
    """An OpenAI-compatible server failed or answered something we could not use."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


class RemoteUnavailable(RemoteEngineError):
    """The server could not be reached, or it timed out."""


class RemoteAuthError(RemoteEngineError):
    """The server refused our credentials (HTTP 401/403)."""
