"""The grounded question-answering format: one place for the prompt, the answer sentences and the check.

The QA service, the demo-model corpus and the `medical.dicom_qa` DataAdapter all build prompts
here, so the model is trained on exactly the text it is later asked with:

    system:    Answer from the DICOM attributes. Copy values exactly.
    user:      Attributes:
               The slice thickness is 5 mm.
               The slice location is -77.2 mm.
               Question: What is the slice thickness?
    assistant: The slice thickness is 5 mm.

Each attribute is written as the sentence that would answer a question about it, so answering is
choosing the right line and copying it: the pattern small models learn first (induction), and
the one prompt-lookup speculative decoding accelerates.

Only attributes of the de-identified data set appear (retrieval never offers removed ones), so
nothing identifying can reach the model through the prompt.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from medical.dicom import GroundingAttribute

SYSTEM_PROMPT = "Answer from the DICOM attributes. Copy values exactly."
MAX_CONTEXT_ATTRIBUTES = 3
REMOVED_PREFIX = "Not available: removed by de-identification"
# Wording for attributes whose dictionary name reads badly in "The ... is <value>." (plural names).
ANSWER_LABELS = {
    "Rows": "number of rows",
    "Columns": "number of columns",
    "BitsAllocated": "number of bits allocated",
    "BitsStored": "number of bits stored",
    "SamplesPerPixel": "number of samples per pixel",
    "SoftwareVersions": "software version",
    "EchoNumbers": "echo number",
    "FocalSpots": "focal spot size",
}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_LABEL_SUFFIX = re.compile(r"\s+\([^()]*\)$")


def attribute_label(name: str) -> str:
    """ "Slice Thickness" -> "slice thickness"; acronyms keep their case ("SOP Class UID" -> "SOP class UID")."""
    words = name.split()
    return " ".join(word if sum(ch.isupper() for ch in word) > 1 else word.lower() for word in words)


def context_attributes(hits: Sequence[GroundingAttribute]) -> list[GroundingAttribute]:
    """The attributes put before the model: the best hit first, then the next ones the file carries.

    UIDs come along only when asked for: long opaque digit strings crowd a small model's prompt.
    """
    if not hits or not hits[0].present:
        return []
    seen: set[str] = set()
    chosen = []
    for index, hit in enumerate(hits):
        if not hit.present or hit.keyword in seen or (index and _is_uid(hit)):
            continue
        seen.add(hit.keyword)
        chosen.append(hit)
        if len(chosen) == MAX_CONTEXT_ATTRIBUTES:
            break
    return chosen


def prompt_messages(question: str, attributes: Sequence[GroundingAttribute]) -> list[dict[str, str]]:
    lines = "\n".join(value_sentence(attribute) for attribute in attributes)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"Attributes:\n{lines}\nQuestion: {_one_line(question)}"},
    ]


def conversation(question: str, attributes: Sequence[GroundingAttribute]) -> list[dict[str, str]]:
    """A training conversation: the prompt, then the answer the service accepts (the first line)."""
    return [
        *prompt_messages(question, attributes),
        {"role": "assistant", "content": value_sentence(attributes[0])},
    ]


def answer_label(attribute: GroundingAttribute) -> str:
    return ANSWER_LABELS.get(attribute.keyword) or attribute_label(attribute.name)


def value_sentence(attribute: GroundingAttribute) -> str:
    return answer_sentence(answer_label(attribute), attribute.value)


def answer_sentence(label: str, value: str) -> str:
    """ "The slice thickness is 5 mm." (no second full stop after a value that ends with one)."""
    return f"The {label} is {value}" + ("" if value.endswith(".") else ".")


def not_recorded_sentence(attribute: GroundingAttribute) -> str:
    return f"This image does not record the {answer_label(attribute)} ({attribute.keyword})."


def removed_sentence(names: Sequence[str]) -> str:
    return f"{REMOVED_PREFIX} ({', '.join(names)})."


def never_recorded_sentence(names: Sequence[tuple[str, str]]) -> str:
    """For attributes the profile would remove but the original never carried."""
    listed = ", ".join(f"{attribute_label(name)} ({keyword})" for name, keyword in names)
    return f"Not recorded: the image as received did not record the {listed}."


SINGLE_FRAME_SENTENCE = "This image has 1 frame: it is a single-frame image (only multi-frame images record the number of frames)."


NO_MATCH_SENTENCE = (
    "No attribute of this image answers the question. Ask about an acquisition or image attribute, "
    "for example the slice thickness, the modality or the number of rows."
)


PIXEL_CONTENT_SENTENCE = (
    "Suite reads the header, not the pixels: it cannot say what the image shows. "
    "Ask about an attribute of the header, for example the modality or the body part examined."
)

_PIXEL_CONTENT = re.compile(
    r"\b(fractur\w*|tumou?r\w*|mass(es)?|lesions?|nodules?|bleed\w*|ha?emorrhag\w*|strokes?"
    r"|pneumon\w*|cancer\w*|metasta\w*|infarct\w*|effusions?|abnormal\w*|findings?|diagnos\w*"
    r"|pathology|malignan\w*)\b"
    r"|what (does|do) (the|this|these) (image|images|scan|scans|picture|study) show"
    r"|what (do|can) you see|\blooks? (normal|like)",
    re.IGNORECASE,
)


def asks_about_pixels(question: str) -> bool:
    """Whether the question asks what the image shows (a reading of the pixels, not of the header)."""
    return bool(_PIXEL_CONTENT.search(question or ""))


# Questions shaped like a reading of the image: whether something is there, how it looks, whether it is
# normal. The QA service treats one as image content only when no attribute answers it well ("any
# plaque in the carotid?"), so "is there a localizer?"-style header questions keep their attribute.
_FINDING_SHAPE = re.compile(
    r"^\s*(is|are) there\b|^\s*(any|anything)\b|\b(looks?|appears?|seems?|visible|seen)\b"
    r"|\b(normal|abnormal|ok|okay|healthy|fine|unremarkable)\b",
    re.IGNORECASE,
)


def shaped_like_a_finding(question: str) -> bool:
    """Whether the question is shaped like one about what the image shows (see `_FINDING_SHAPE`)."""
    return bool(_FINDING_SHAPE.search(question or ""))


def answer_is_grounded(
    answer: str, attribute: GroundingAttribute, context: Sequence[GroundingAttribute]
) -> bool:
    """Does a phrased answer state the retrieved value, and no number the attributes do not hold?"""
    text = _normalise(answer)
    if not text or "<|" in answer or len(answer) > 400:
        return False
    if _normalise(answer_label(attribute)) not in text and attribute.keyword.lower() not in text:
        return False  # a right value under another attribute's name is a wrong answer
    if not _states_value(_squeeze(answer), _squeeze(attribute.value)):
        return False
    known = {float(number) for item in context for number in _NUMBER.findall(item.value)}
    return all(float(number) in known for number in _NUMBER.findall(answer))


def _states_value(answer: str, value: str) -> bool:
    """The value as recorded, case included ("copy values exactly"). The meaning shown after a code
    may be left out ("The modality is CT."), but not replaced ("MR (Computed Tomography)")."""
    if value in answer:
        return True
    core = _core(value)
    position = answer.find(core)
    while position >= 0:
        if not answer[position + len(core) :].startswith(" ("):
            return True
        position = answer.find(core, position + 1)
    return False


def _is_uid(attribute: GroundingAttribute) -> bool:
    return attribute.keyword.endswith(("UID", "UIDs"))


def _core(value: str) -> str:
    """The value without the meaning shown after it: "CT (Computed Tomography)" -> "CT"."""
    return _LABEL_SUFFIX.sub("", value).strip() or value


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# Questions about the whole study, answered from the study index (medical.services.study_facts).
_STUDY_KINDS = (
    (
        "summary",
        re.compile(
            r"\b(summar\w*|overview|synopsis|rundown|run-down|gist|recap|outline)\b"
            r"|\b(describe|tell me about|what is in|what's in) (this|the) (study|exam\w*|scan)\b"
            r"|\btell me (briefly |quickly |in short )?(about|what) (this|the) (study|exam\w*|scan)\b"
            r"|\bwhat (is|was) (this|the) (study|exam\w*) (about|of)\b",
            re.IGNORECASE,
        ),
    ),
    (
        "series_count",
        re.compile(
            r"\b(how many|number of|count of|count the)\s+(\w+\s+){0,2}series\b|\bseries count\b",
            re.IGNORECASE,
        ),
    ),
    (
        "image_count",
        re.compile(
            r"\b(how many|number of|count of|count the)\s+(\w+\s+){0,2}"
            r"(images|instances|slices|pictures|files|objects)\b|\b(image|instance) count\b",
            re.IGNORECASE,
        ),
    ),
    ("modalities", re.compile(r"\bmodalities\b", re.IGNORECASE)),
    ("body_parts", re.compile(r"\b(body parts|anatomical regions|regions)\b", re.IGNORECASE)),
)


def study_question_kind(question: str) -> str | None:
    """ "series_count", "image_count", "modalities", "body_parts", "summary", or None (a header question)."""
    for kind, pattern in _STUDY_KINDS:
        if pattern.search(question or ""):
            return kind
    return None
