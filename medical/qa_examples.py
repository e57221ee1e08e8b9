"""Question/answer conversations and header facts from DE-IDENTIFIED data sets, in the QA prompt format.

Used by the demo-model corpus (medical.corpus) and the LoRA DataAdapter (medical.datasets). Each
conversation is what the QA service would send for that question, followed by the answer it
accepts: retrieval must pick the asked attribute first, or the pair is dropped, so the model only
ever learns to copy the value of the attribute on the first line.

Wordings of the held-out question sets (the dev set in SHARED_DATA_DIR and the project's unseen
set) are never generated, and their files are left out of the corpus, so evaluation stays honest.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from pydicom.datadict import dictionary_description, tag_for_keyword
from pydicom.dataset import Dataset

from medical import qa_format
from medical.dicom import GroundingAttribute, format_value, retrieve
from medical.dicom.structure import format_tag
from medical.dicom.values import grounding_vocabulary

QUESTION_TEMPLATES = (
    "What is the {}?",
    "What {} was used?",
    "Tell me the {}.",
    "What was the {} of this image?",
    "Which {} does this study have?",
    "Give the {}.",
    "{}?",
    "Can you tell me the {} for this series?",
    "What {} is recorded?",
    "I need the {} please.",
)
FACT_KEYWORDS = (
    "Modality", "Manufacturer", "ManufacturerModelName", "BodyPartExamined", "SliceThickness", "KVP",
    "RepetitionTime", "EchoTime", "MagneticFieldStrength", "Rows", "Columns", "NumberOfFrames",
    "PixelSpacing", "PhotometricInterpretation", "BitsStored", "SOPClassUID",
)  # fmt: skip
_QUESTION_WORDS = re.compile(r"^(how|who|what|which|where|when|is|was|whose|why)\b|\bor\b")


def _normalise(question: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", question.lower()))


def heldout_question_files() -> list[Path]:
    configured = getattr(settings, "MEDICAL_QA_HELDOUT_FILES", None)
    if configured is not None:
        return [Path(path) for path in configured]
    return [
        Path(settings.SHARED_DATA_DIR) / "dicom_qa" / "dev_questions.jsonl",
        Path(settings.BASE_DIR) / "tests" / "medical" / "data" / "unseen_questions.jsonl",
        Path(settings.BASE_DIR) / "tests" / "medical" / "data" / "second_questions.jsonl",
        Path(settings.BASE_DIR) / "tests" / "medical" / "data" / "third_questions.jsonl",
    ]


@cache
def _heldout() -> tuple[frozenset[str], frozenset[str]]:
    wordings, files = set(), set()
    for path in heldout_question_files():
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                wordings.add(_normalise(row["question"]))
                files.add(str(row["file"]))
                folder = _test_files() / str(row["file"])
                if folder.is_dir():  # a study-level case names a folder: all its files are held out
                    files.update(
                        str(path.relative_to(_test_files())) for path in folder.rglob("*") if path.is_file()
                    )
    return frozenset(wordings), frozenset(files)


def _test_files() -> Path:
    import pydicom

    return Path(pydicom.__file__).resolve().parent / "data" / "test_files"


def heldout_wordings() -> frozenset[str]:
    return _heldout()[0]


def heldout_files() -> frozenset[str]:
    return _heldout()[1]


@cache
def _phrases(keyword: str) -> tuple[str, ...]:
    """Noun phrases naming the attribute: its dictionary name and the clinician wordings that are nouns."""
    tag = tag_for_keyword(keyword)
    names = [qa_format.attribute_label(dictionary_description(tag))] if tag is not None else []
    synonyms = grounding_vocabulary()["synonyms"].get(keyword, [])
    names += [phrase for phrase in synonyms if not _QUESTION_WORDS.search(phrase)]
    return tuple(dict.fromkeys(names))


def answerable_keywords() -> tuple[str, ...]:
    return tuple(sorted(grounding_vocabulary()["synonyms"]))


def _rank(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class QaPair:
    """A question and the attributes the QA service would ground it on (the answer is the first)."""

    source_id: str
    question: str
    context: tuple[GroundingAttribute, ...]

    @property
    def messages(self) -> list[dict[str, str]]:
        return qa_format.conversation(self.question, self.context)


def question_answer_pairs(ds: Dataset, *, source_id: str, per_attribute: int = 2) -> Iterator[QaPair]:
    """Questions about attributes this data set carries, a few wordings each, grounded as the service would."""
    excluded = heldout_wordings()
    for keyword in answerable_keywords():
        if keyword not in ds or ds[keyword].is_empty:
            continue
        candidates = sorted(
            ((template, phrase) for template in QUESTION_TEMPLATES for phrase in _phrases(keyword)),
            key=lambda pair: _rank(source_id, keyword, *pair),
        )
        produced = 0
        for template, phrase in candidates:
            if produced == per_attribute:
                break
            question = template.format(phrase)
            question = question[0].upper() + question[1:]
            if _normalise(question) in excluded:
                continue
            hits = retrieve(question, ds)
            if not hits or hits[0].keyword != keyword or not hits[0].present:
                continue  # the service would not ground this wording on this attribute: do not teach it
            produced += 1
            yield QaPair(
                f"{source_id}:{keyword}:{produced}", question, tuple(qa_format.context_attributes(hits))
            )


def header_facts(ds: Dataset) -> str:
    """Plain sentences stating the main acquisition attributes, the way answers phrase them."""
    sentences = []
    for keyword in FACT_KEYWORDS:
        if keyword not in ds:
            continue
        element = ds[keyword]
        value = format_value(element)
        if value:
            attribute = GroundingAttribute(format_tag(element.tag), keyword, element.name, value, 0.0)
            sentences.append(qa_format.value_sentence(attribute))
    return " ".join(sentences)
