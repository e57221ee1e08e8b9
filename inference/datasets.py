"""The plug-in point between industry apps and the shared LLM layer.

Industry apps register, in their AppConfig.ready():

* a `DataAdapter`: turns the domain records a given user may see into training examples for
  LoRA jobs, with a deterministic train/eval split and, optionally, a task metric;
* a corpus contribution: real domain text (dictionaries, work orders, typology descriptions,
  question/answer pairs) used to pre-train the demo models that `build_demo_models` builds.

This module never imports an industry app; the tuning app lists whatever is registered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class TrainingExample:
    """One example: chat messages (loss on assistant turns) or prompt/completion (loss on completion)."""

    source_id: str
    messages: Messages | None = None
    prompt: str | None = None
    completion: str | None = None

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("A training example has either messages or a prompt/completion pair.")
        if self.prompt is not None and self.completion is None:
            raise ValueError("A prompt needs a completion.")

    def as_dict(self) -> dict[str, Any]:
        if self.messages is not None:
            return {"messages": self.messages}
        return {"prompt": self.prompt, "completion": self.completion}


def eval_split(source_id: str, *, eval_fraction: float = 0.2, salt: str = "") -> bool:
    """Deterministic split: the same record always lands on the same side, across runs and machines."""
    digest = hashlib.sha256(f"{salt}:{source_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


@runtime_checkable
class DataAdapter(Protocol):
    name: str  # e.g. "medical.dicom_qa"
    description: str
    resource: str  # the policy resource it feeds, e.g. "model:medical_qa"

    def examples(self, *, user, filters: dict[str, Any]) -> Iterable[TrainingExample]:
        """Examples from the records `user` may see (the adapter applies the access policy)."""

    def describe_query(self, *, user, filters: dict[str, Any]) -> str:
        """A human-readable description of the records used, stored with each job's dataset snapshot."""

    # Optional, read with getattr: `filter_help`, one line naming the filters `examples` accepts
    # (shown beside the job form's filters field and in the API's data adapter list), and
    # `task_metric`, a TaskMetric.


@dataclass(frozen=True)
class TaskMetric:
    """An adapter's own quality measure, e.g. exact answer accuracy on its eval split."""

    name: str
    evaluate: Callable[[Callable[[Messages], str], list[TrainingExample]], float]


@dataclass(frozen=True)
class DatasetSplit:
    train: list[TrainingExample]
    eval: list[TrainingExample]
    content_hash: str
    source_ids: list[str] = field(default_factory=list)


def split_examples(examples: Iterable[TrainingExample], *, salt: str = "") -> DatasetSplit:
    train, evaluation = [], []
    hasher = hashlib.sha256()
    for example in sorted(examples, key=lambda e: e.source_id):
        hasher.update(repr(sorted(example.as_dict().items())).encode())
        (evaluation if eval_split(example.source_id, salt=salt) else train).append(example)
    everything = train + evaluation
    return DatasetSplit(
        train=train,
        eval=evaluation,
        content_hash=hasher.hexdigest(),
        source_ids=[e.source_id for e in everything],
    )


_ADAPTERS: dict[str, DataAdapter] = {}


def register(adapter: DataAdapter) -> DataAdapter:
    if not isinstance(adapter, DataAdapter):
        raise TypeError(f"{adapter!r} does not implement the DataAdapter protocol.")
    _ADAPTERS[adapter.name] = adapter
    return adapter


def get(name: str) -> DataAdapter:
    try:
        return _ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(_ADAPTERS)) or "none"
        raise LookupError(f"No data adapter named {name!r} (registered: {known}).") from None


def adapters() -> list[DataAdapter]:
    return [_ADAPTERS[name] for name in sorted(_ADAPTERS)]


# --- demo-model corpus ---------------------------------------------------------------------
@dataclass(frozen=True)
class CorpusContribution:
    name: str
    documents: Callable[[], Iterable[str]]
    conversations: Callable[[], Iterable[Messages]] = lambda: ()


_CORPUS: dict[str, CorpusContribution] = {}


def register_corpus(contribution: CorpusContribution) -> None:
    _CORPUS[contribution.name] = contribution


def corpus_contributions() -> list[CorpusContribution]:
    return [_CORPUS[name] for name in sorted(_CORPUS)]


def iter_corpus() -> Iterator[tuple[str, list[str], list[Messages]]]:
    for contribution in corpus_contributions():
        yield contribution.name, list(contribution.documents()), list(contribution.conversations())
