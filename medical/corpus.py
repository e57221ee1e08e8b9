"""The medical contribution to the demo models' corpus: real DICOM text, nothing synthetic.

- documents: the DICOM data dictionary installed with pydicom (tag, name, keyword, VR, VM), the
  clinician wording for attributes (medical/dicom/data/grounding.yaml), and header facts of the
  real files that ship in the pydicom wheel, after de-identification;
- conversations: grounded question/answer pairs over those de-identified headers, in exactly
  the QA service's prompt format (medical.qa_format), so the model learns to copy values from
  the attributes block; each also once more with the asked value exchanged for another real
  value of that attribute, so that copying, not remembering, is what lowers the loss.

The files and wordings of the held-out question sets are left out (medical.qa_examples).
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cache
from pathlib import Path

import pydicom
from pydicom.datadict import DicomDictionary, dictionary_description, tag_for_keyword

from medical.dicom import DicomRejected, deidentify, read_dicom
from medical.dicom.structure import format_tag
from medical.dicom.values import grounding_vocabulary
from medical.qa_examples import QaPair, header_facts, heldout_files, question_answer_pairs

TEST_FILES = Path(pydicom.__file__).resolve().parent / "data" / "test_files"
DICTIONARY_LINES_PER_DOCUMENT = 30
MAX_CONVERSATIONS = 2400
MAX_PER_ATTRIBUTE = 40
# The corpus is public reference data: its UIDs are remapped with a fixed, non-secret key.
_CORPUS_UID_KEY = b"suite-demo-corpus-not-a-secret"


def documents() -> Iterator[str]:
    yield from _documents()


def conversations() -> Iterator[list[dict]]:
    for messages in _conversations():
        yield [dict(message) for message in messages]  # copies: the cached corpus stays as built


@cache
def _documents() -> tuple[str, ...]:
    return tuple(_generate_documents())


@cache
def _conversations() -> tuple[list[dict], ...]:
    """Computed once per process (a few seconds): the inputs are the files shipped with pydicom."""
    return tuple(_generate_conversations())


def _generate_documents() -> Iterator[str]:
    yield from _dictionary_documents()
    yield from _vocabulary_documents()
    seen = set()
    for _, dataset in _deidentified_headers():
        facts = header_facts(dataset)
        if facts and facts not in seen:
            seen.add(facts)
            yield f"DICOM header of a {dataset.get('Modality', 'DICOM')} image. {facts}"


def _generate_conversations() -> Iterator[list[dict]]:
    real = list(_real_header_pairs())
    for pair in real:
        yield pair.messages
    for pair in _value_exchanged(real):
        yield pair.messages


def _real_header_pairs() -> Iterator[QaPair]:
    unique: dict[tuple, tuple[int, QaPair]] = {}
    for relative, dataset in _deidentified_headers():
        for pair in question_answer_pairs(dataset, source_id=relative, per_attribute=2):
            key = (pair.question, tuple((item.keyword, item.value) for item in pair.context))
            rank = _rank(pair.source_id)
            if key not in unique or rank < unique[key][0]:
                unique[key] = (rank, pair)
    per_keyword: dict[str, int] = {}
    chosen = 0
    for _, pair in sorted(unique.values(), key=lambda entry: entry[0]):
        keyword = pair.context[0].keyword
        # Long opaque values (UIDs) would otherwise crowd out the attributes clinicians ask about.
        if per_keyword.get(keyword, 0) >= MAX_PER_ATTRIBUTE or chosen >= MAX_CONVERSATIONS:
            continue
        per_keyword[keyword] = per_keyword.get(keyword, 0) + 1
        chosen += 1
        yield pair


def _value_exchanged(pairs: list[QaPair]) -> Iterator[QaPair]:
    """Each pair again, with the asked attribute holding the value another real file holds for it.

    Real headers repeat values (most CTs in the wheel are 5 mm thick), so a small model can lower
    its loss by memorising "slice thickness -> 5 mm" instead of reading the attributes. Exchanging
    the value for another one seen for the same attribute makes reading the only way to answer.
    """
    seen: dict[str, set[str]] = {}
    for pair in pairs:
        seen.setdefault(pair.context[0].keyword, set()).add(pair.context[0].value)
    for index, pair in enumerate(pairs):
        asked = pair.context[0]
        others = sorted(seen[asked.keyword] - {asked.value})
        if others:
            value = others[_rank(f"exchange:{index}") % len(others)]
            context = (replace(asked, value=value), *pair.context[1:])
            yield QaPair(f"{pair.source_id}:exchanged", pair.question, context)


def _rank(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _dictionary_documents() -> Iterator[str]:
    lines = []
    for tag, (vr, vm, name, retired, keyword) in sorted(DicomDictionary.items()):
        if retired or not keyword:
            continue
        lines.append(f"{format_tag(tag)} {name}: keyword {keyword}, VR {vr}, VM {vm}.")
    for start in range(0, len(lines), DICTIONARY_LINES_PER_DOCUMENT):
        yield "DICOM data dictionary. " + " ".join(lines[start : start + DICTIONARY_LINES_PER_DOCUMENT])


def _vocabulary_documents() -> Iterator[str]:
    vocabulary = grounding_vocabulary()
    for keyword, phrases in sorted(vocabulary["synonyms"].items()):
        tag = tag_for_keyword(keyword)
        name = dictionary_description(tag) if tag is not None else keyword
        unit = vocabulary["units"].get(keyword)
        measured = f" It is given in {unit}." if unit else ""
        yield f"{name} ({keyword}) is also called {', '.join(phrases)}.{measured}"


def _deidentified_headers() -> Iterator[tuple[str, pydicom.Dataset]]:
    excluded = heldout_files()
    # Held across the caller's use of each data set too: values are validated (and warn) as read.
    with _quiet_pydicom():
        for path in sorted(TEST_FILES.rglob("*")):
            relative = path.relative_to(TEST_FILES).as_posix()
            if not path.is_file() or relative in excluded:
                continue
            try:
                dataset = read_dicom(path.read_bytes(), filename=relative)
            except DicomRejected:
                continue
            yield relative, deidentify(dataset, uid_key=_CORPUS_UID_KEY).dataset


@contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """The test files hold deliberately odd values; pydicom's complaints about them are noise here."""
    logger = logging.getLogger("pydicom")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
