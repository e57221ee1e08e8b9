"""Text matching for grounding: a question and DICOM attribute names, wording and values as stems.

The question is read by `question_words` (shorthand written out, typing slips corrected) and Porter
stems; phrases of data/grounding.yaml (clinician wording, code meanings) are compiled the same way and
compared as consecutive stems, determiners and copulas left out. Lexical evidence weighs each matched
stem by its rarity across the data dictionary. medical.dicom.grounding ranks attributes with it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import cache

from pydicom.datadict import DicomDictionary, dictionary_description, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from medical.dicom.profile import DeidOptions, DeidProfile, load_basic_profile
from medical.dicom.question_words import question_words, split_words
from medical.dicom.stemming import porter_stem
from medical.dicom.structure import format_tag
from medical.dicom.values import grounding_vocabulary

_NOT_STEMMED = frozenset(
    {
        "series",
        "species",
        "thickness",
        "analysis",
        "axis",
        "kvp",
        "mas",
        "fps",
        "ms",
        "radiographer",
        "sonographer",
    }
)
_SKIPPED_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ"})
_REMOVED_ACTIONS = frozenset({"X", "Z", "D"})


def _stem(word: str) -> str:
    """The Porter stem ("operated"/"operator"/"operation" -> "oper", "frames" -> "frame",
    "positioned"/"position" -> "posit"), except for domain words whose stem would merge them with
    other attributes ("radiographer" is not "radiograph", "series" not "seri") and unit acronyms;
    a base verb whose "-ation" noun Porter leaves apart takes the noun's stem (see `_nominalised`)."""
    if word in _NOT_STEMMED:
        return word
    stem = porter_stem(word)
    return _nominalised().get(stem, stem)


@cache
def _nominalised() -> dict[str, str]:
    """Base-verb stem -> stem of its "-ation" noun, for the nouns of the data dictionary's names.

    Porter conflates "rotated" with "rotation" (both "rotat") but not a verb whose noun doubles a
    consonant or adds "-ation" to a short stem: "summed" is "sum", "summation" is "summat"; "varied" is
    "vari", "variation" is "variat". The base of a noun X-ation is X (a doubled final consonant
    undoubled); its stem is mapped to the noun's when no other dictionary word has that stem (so
    "fixation" does not claim "fix") and it has three letters or more. "-ization" nouns need nothing:
    Porter already maps them and their verbs to one stem."""
    words = {word for entry in DicomDictionary.values() for word in _words(entry[2])}
    stems = {porter_stem(word) for word in words}
    mapping: dict[str, str] = {}
    for word in sorted(words):
        if not word.endswith("ation") or word.endswith("ization"):
            continue
        base = word[: -len("ation")]
        if len(base) >= 2 and base[-1] == base[-2] and base[-1] not in "lsz":
            base = base[:-1]
        noun, verb = porter_stem(word), porter_stem(base)
        if len(verb) >= 3 and verb != noun and verb not in stems:
            mapping[verb] = noun
    return mapping


def _words(text: str) -> list[str]:
    return split_words(text)


def _split_keyword(keyword: str) -> list[str]:
    return re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|$)|[A-Z]?[a-z]+|\d+", keyword)


@cache
def _stopwords() -> frozenset[str]:
    return frozenset(grounding_vocabulary()["stopwords"].split())


# Left out when phrases are compared: "the position of this slice" asks what "position of the slice"
# does, "pt female?" what "is the patient female" does.
_PHRASE_GAPS = frozenset(
    {"the", "a", "an", "this", "that", "these", "those", "is", "are", "was", "were", "be"}
)


class _Query:
    def __init__(self, question: str) -> None:
        stopwords = _stopwords()
        words = question_words(question)
        self.ordered = tuple(words)
        self.words = frozenset(words)
        self.sequence = tuple(_stem(word) for word in words if word not in _PHRASE_GAPS)
        self.stems = frozenset(self.sequence)
        self.content = frozenset(_stem(word) for word in words if word not in stopwords)

    def asks(self, phrase: tuple[str, ...]) -> bool:
        """The phrase's stems occur in the question, consecutively. Most phrases fail on their first
        stem, checked against a set: thousands of attribute names are tested per question."""
        return bool(phrase) and phrase[0] in self.stems and _contains(self.sequence, phrase)


@cache
def _attribute_tokens(keyword: str) -> frozenset[str]:
    tag = _tag_for_keyword(keyword)
    name = dictionary_description(tag) if tag is not None else ""
    words = _words(name) + [word.lower() for word in _split_keyword(keyword)]
    return frozenset(_stem(word) for word in words if word not in _stopwords())


@cache
def _idf() -> tuple[dict[str, float], float]:
    """Inverse document frequency of each stem over all data dictionary entries."""
    document_frequency: dict[str, int] = {}
    keywords = [entry[4] for entry in DicomDictionary.values() if entry[4]]
    for keyword in keywords:
        for token in _attribute_tokens(keyword):
            document_frequency[token] = document_frequency.get(token, 0) + 1
    total = len(keywords)
    idf = {token: math.log((total + 1) / (count + 1)) + 1.0 for token, count in document_frequency.items()}
    return idf, math.log(total + 1) + 1.0


def _weight(token: str) -> float:
    idf, unseen = _idf()
    return idf.get(token, unseen)


def _whole_name_score(query: _Query, keyword: str) -> float:
    """Lexical evidence for a removed attribute: its whole name, of two words or more, was asked for
    as a phrase ("the acquisition time", not "the repetition time of this acquisition"): a shared
    word such as "patient" or "date" must not turn a question into a removed one."""
    phrase = _name_phrase(keyword)
    if len(phrase) < 2 or not query.asks(phrase):
        return 0.0
    return _lexical_score(query, keyword)


@cache
def _name_phrase(keyword: str) -> tuple[str, ...]:
    tag = _tag_for_keyword(keyword)
    name = dictionary_description(tag) if tag is not None else ""
    return tuple(_stem(word) for word in _words(name) if word not in _stopwords())


def _lexical_score(query: _Query, keyword: str) -> float:
    tokens = _attribute_tokens(keyword)
    matched = tokens & query.content
    if not matched:
        return 0.0
    matched_weight = sum(_weight(token) for token in matched)
    coverage = matched_weight / sum(_weight(token) for token in tokens)
    return matched_weight * (0.5 + coverage)  # favour attributes whose whole name was asked for


def _value_score(query: _Query, elem: DataElement, formatted: str) -> float:
    if elem.VR not in ("CS", "SH", "LO") or elem.is_empty:
        return 0.0
    values = elem.value if elem.VM > 1 else [elem.value]
    # The displayed value carries the meaning of a code too: "GR (Gradient Recalled)".
    shown = [*values, formatted]
    tokens = {_stem(word) for value in shown for word in _words(str(value)) if word not in _stopwords()}
    return min(3.0 * len({token for token in tokens if len(token) >= 2} & query.content), 6.0)


def _phrase_scores(query: _Query, phrases: dict[str, tuple[tuple[str, ...], ...]]) -> dict[str, float]:
    """Keyword -> bonus for its longest phrase found (as consecutive stems) in the question."""
    scores: dict[str, float] = {}
    for keyword, keyword_phrases in phrases.items():
        best = max((len(phrase) for phrase in keyword_phrases if query.asks(phrase)), default=0)
        if best:
            scores[keyword] = 6.0 + 3.0 * best
    return scores


def _offered_code_scores(query: _Query) -> dict[str, float]:
    """A question offering alternatives ("AP or PA?", "US or CT?", "is the dose per beam or for the
    plan?") asks for the attribute whose defined codes (or one-word meanings) it names, whichever of
    them the file holds; as a one-word phrase would score. Without an "or" a code is no evidence:
    "us", "pt" and "other" are everyday words."""
    if "or" not in query.words:
        return {}
    return {
        keyword: 9.0 for keyword, codes in _code_phrases().items() if any(query.asks(code) for code in codes)
    }


@cache
def _code_phrases() -> dict[str, tuple[tuple[str, ...], ...]]:
    coded: dict[str, list[str]] = {}
    for keyword, meanings in grounding_vocabulary()["labels"].items():
        for code, meaning in meanings.items():
            coded.setdefault(keyword, []).append(str(code))
            if len(_words(str(meaning))) == 1:
                coded[keyword].append(str(meaning))
    return {
        keyword: tuple(phrase for phrase in compiled if phrase and len("".join(phrase)) >= 2)
        for keyword, compiled in _compile(coded).items()
    }


def _unit_scores(query: _Query) -> dict[str, float]:
    """A unit named in the question ("what MHz was it tuned to?", "how many mm per pixel?") is evidence
    for the attributes shown in it (the `units` of data/grounding.yaml), a little less than a phrase."""
    scores: dict[str, float] = {}
    for unit, keywords in _units().items():
        if unit in query.words:
            for keyword in keywords:
                scores[keyword] = 6.0
    return scores


@cache
def _units() -> dict[str, tuple[str, ...]]:
    """Unit word (two letters or more, "mm", "mhz", "degrees") -> keywords shown in that unit."""
    by_unit: dict[str, list[str]] = {}
    for keyword, unit in grounding_vocabulary()["units"].items():
        words = _words(str(unit))
        if len(words) == 1 and len(words[0]) >= 2:
            by_unit.setdefault(words[0], []).append(keyword)
    return {unit: tuple(keywords) for unit, keywords in by_unit.items()}


def _contains(sequence: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    width = len(phrase)
    return any(sequence[start : start + width] == phrase for start in range(len(sequence) - width + 1))


def _compile(section: dict[str, list[str]]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Phrases as the question is read: shorthand written out, determiners and copulas left out."""
    return {
        keyword: tuple(
            tuple(_stem(word) for word in question_words(str(phrase)) if word not in _PHRASE_GAPS)
            for phrase in phrases
        )
        for keyword, phrases in section.items()
    }


@cache
def _synonym_phrases() -> dict[str, tuple[tuple[str, ...], ...]]:
    """The clinician wording, plus the meanings of each attribute's coded values: "was it spin echo
    or gradient echo?" asks for Scanning Sequence whatever this file's code is. Only meanings of two
    words or more: single ones ("Other", "Document", "male") are too common in other questions."""
    vocabulary = grounding_vocabulary()
    phrases = {keyword: list(wording) for keyword, wording in vocabulary["synonyms"].items()}
    for keyword, meanings in vocabulary["labels"].items():
        phrases.setdefault(keyword, []).extend(
            str(meaning) for meaning in meanings.values() if len(_words(str(meaning))) >= 2
        )
    return _compile(phrases)


@cache
def _phi_phrases() -> dict[str, tuple[tuple[str, ...], ...]]:
    return _compile(grounding_vocabulary()["phi"])


def _retrievable_phrases(hidden: frozenset[str]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Synonyms, plus the PHI wording of attributes an option kept (e.g. study date with full dates)."""
    phrases = dict(_synonym_phrases())
    for keyword, keyword_phrases in _phi_phrases().items():
        if keyword not in hidden:
            phrases[keyword] = phrases.get(keyword, ()) + keyword_phrases
    return {keyword: value for keyword, value in phrases.items() if keyword not in hidden}


def _removed_keywords(profile: DeidProfile | None, options: DeidOptions | None) -> frozenset[str]:
    return _removed_for(profile or load_basic_profile(), options or DeidOptions())


@cache
def _removed_for(profile: DeidProfile, options: DeidOptions) -> frozenset[str]:
    return frozenset(
        rule.keyword
        for rule in profile.rules.values()
        if rule.keyword and rule.action(options) in _REMOVED_ACTIONS
    )


@cache
def _tag_for_keyword(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


def _walk(ds: Dataset, path: str = "", depth: int = 0) -> Iterator[tuple[str, int, DataElement]]:
    if depth == 0:
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "TransferSyntaxUID" in meta:
            yield "(0002,0010)", 0, meta["TransferSyntaxUID"]
    for elem in ds:
        if elem.tag.is_private or elem.tag.element == 0:
            continue
        where = f"{path}{format_tag(elem.tag)}"
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or ()):
                yield from _walk(item, f"{where}[{index}].", depth + 1)
        elif elem.VR not in _SKIPPED_VRS and keyword_for_tag(elem.tag):
            yield where, depth, elem
