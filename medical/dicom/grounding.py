"""Find the header attributes a clinician's question is about, in a DE-IDENTIFIED data set.

`retrieve` ranks the data set's elements (sequences included) against the question with three kinds
of evidence: the attribute's keyword and dictionary name (words weighted by how rare they are across
the whole DICOM data dictionary, so "rows" counts more than "image"), clinician wording from
data/grounding.yaml ("TR", "tube voltage"), and words of the element's own value. Attributes the
profile removed or replaced with dummies are never offered as answers.

A `semantic` scorer (the QA service passes one built on `inference.services.embed`) adds the
evidence keyword lists miss: the cosine similarity between the question and each attribute's
dictionary name and clinician wording, so "when was it acquired?" finds Acquisition Date and
"what scanner made this?" finds Manufacturer. With `include_removed`, attributes the profile removed
compete too (flagged `removed`, without a value), so a question about them is answered "removed by
de-identification" rather than with the nearest attribute that survived.

`removed_phi_requested` tells the QA service that a question asks for something de-identification
removed (a name, a birth date, the hospital), so it answers "not available" instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache

from pydicom.datadict import DicomDictionary, dictionary_description
from pydicom.dataset import Dataset

from medical.dicom.matching import (
    _attribute_tokens,
    _contains,
    _lexical_score,
    _name_phrase,
    _offered_code_scores,
    _phi_phrases,
    _phrase_scores,
    _Query,
    _removed_keywords,
    _retrievable_phrases,
    _split_keyword,
    _stem,
    _stopwords,
    _synonym_phrases,
    _tag_for_keyword,
    _unit_scores,
    _value_score,
    _walk,
    _whole_name_score,
    _words,
)
from medical.dicom.profile import DeidOptions, DeidProfile
from medical.dicom.question_words import question_words
from medical.dicom.structure import format_tag
from medical.dicom.values import format_value, grounding_vocabulary

__all__ = [
    "GroundingAttribute",
    "SemanticScorer",
    "attribute_texts",
    "grounding_keywords",
    "format_value",
    "names_an_attribute",
    "removed_phi_requested",
    "retrieve",
]

# (question, keywords) -> {keyword: cosine similarity in [-1, 1]}; missing keywords count as unrelated.
SemanticScorer = Callable[[str, Iterable[str]], dict[str, float]]

_ABSENT_WEIGHT = 0.5  # an attribute the file lacks ranks below a present one with the same evidence
_DEPTH_PENALTY = 0.05
# Cosine similarity below the floor is noise for all-MiniLM-L6-v2 on short phrases; above it each
# 0.1 of similarity weighs about as much as one more phrase word matched.
_SEMANTIC_FLOOR = 0.4
_SEMANTIC_WEIGHT = 30.0
_DECISIVE_SCORE = 20.0
_DECISIVE_RATIO = 0.6


@dataclass(frozen=True)
class GroundingAttribute:
    tag: str  # "(0018,0050)"
    keyword: str
    name: str
    value: str  # formatted for display; "" when the file does not carry the attribute
    score: float
    path: str = ""  # "(300A,00B0)[0].(300A,00B2)" inside sequences, else the tag
    present: bool = True
    removed: bool = False  # the profile removes or replaces it: the value is gone from the copy


def retrieve(
    question: str,
    ds: Dataset,
    *,
    top_k: int = 5,
    profile: DeidProfile | None = None,
    options: DeidOptions | None = None,
    semantic: SemanticScorer | None = None,
    include_removed: bool = False,
) -> list[GroundingAttribute]:
    """The `top_k` attributes that best answer `question`, best first.

    Semantic similarity is asked for only when the lexical evidence is not decisive (no strong
    match, or a close runner-up): a question naming its attribute costs no embedding.
    """
    hidden = _removed_keywords(profile, options)
    query = _Query(question)
    phrases = _retrievable_phrases(hidden)
    phrase_scores = _phrase_scores(query, phrases)
    for keyword, score in [*_offered_code_scores(query).items(), *_unit_scores(query).items()]:
        if keyword not in hidden:
            phrase_scores[keyword] = max(phrase_scores.get(keyword, 0.0), score)
    removed_scores = _removed_phrase_scores(query, hidden) if include_removed else {}
    person_scores = (_people_named(query, hidden) or _person_asked(query, hidden)) if include_removed else {}
    # Each element's value is formatted once, and its lexical evidence computed once (a second
    # ranking with semantic evidence only adds to it).
    elements = []
    for path, depth, elem in _walk(ds):
        if not elem.keyword or elem.keyword in hidden:
            continue
        shown = format_value(elem)
        if shown:
            lexical = (
                _lexical_score(query, elem.keyword)
                + phrase_scores.get(elem.keyword, 0.0)
                + _value_score(query, elem, shown)
            )
            elements.append((path, depth, elem, shown, lexical))

    def rank(similar: dict[str, float]) -> list[tuple[float, int, GroundingAttribute]]:
        found: list[tuple[float, int, GroundingAttribute]] = []
        seen_keywords: set[str] = set()
        for path, depth, elem, shown, lexical in elements:
            keyword = elem.keyword
            score = lexical + _semantic_bonus(similar.get(keyword))
            if score <= 0:
                continue
            score *= 1.0 - _DEPTH_PENALTY * min(depth, 10)
            seen_keywords.add(keyword)
            attribute = GroundingAttribute(
                format_tag(elem.tag), keyword, elem.name, shown, round(score, 4), path
            )
            found.append((score, depth, attribute))
        absent = set(phrase_scores) | {
            keyword for keyword in phrases if _semantic_bonus(similar.get(keyword))
        }
        for keyword in sorted(absent - seen_keywords):
            score = (
                phrase_scores.get(keyword, 0.0)
                + _lexical_score(query, keyword)
                + _semantic_bonus(similar.get(keyword))
            ) * _ABSENT_WEIGHT
            found.append((score, 0, _valueless(keyword, score)))
        if include_removed:
            for keyword in sorted(hidden):
                score = (
                    removed_scores.get(keyword, 0.0)
                    + _whole_name_score(query, keyword)
                    + person_scores.get(keyword, 0.0)
                    + _semantic_bonus(similar.get(keyword))
                )
                if score > 0:
                    found.append((score, 0, _valueless(keyword, score, removed=True)))
        found.sort(key=lambda entry: (-entry[0], entry[1], entry[2].path))
        return found

    found = rank({})
    if semantic is not None and not _decisive(found):
        wanted = {elem.keyword for _, _, elem, _, _ in elements} | set(phrases)
        if include_removed:
            wanted |= set(_phi_phrases()) & hidden
            wanted |= {entry[2].keyword for entry in found[:top_k] if entry[2].removed}
        found = rank(_answer_type_agrees(query, semantic(question, sorted(wanted)) or {}))
    if "when" in query.words:  # a moment: dates and times, else the study's date
        found = _answer_type_first(found, elements, hidden, include_removed, _temporal, "StudyDate")
    elif "where" in query.words:  # a place: the institution, a location or position, a body part
        found = _answer_type_first(found, elements, hidden, include_removed, _place, "InstitutionName")
    counted = _counted(query)
    if counted:  # "how many bits ...?" counts bits: attributes naming them go first
        found = _answer_type_first(
            found, elements, hidden, include_removed, lambda keyword: _counts(keyword, counted), None
        )
    return [attribute for _, _, attribute in found[:top_k]]


def _answer_type_first(
    found: list, elements: list, hidden: frozenset[str], include_removed: bool, agrees, fallback: str | None
) -> list:
    """The candidates of the kind of answer the question asks for go first ("when were the carotids
    scanned?" is a date, whatever the other words matched); with none in the running, `fallback`
    answers (the study's date for "when", the institution for "where"): its value, "removed" when the
    profile removed it (offered only with `include_removed`), else "not recorded"."""
    typed = [entry for entry in found if agrees(entry[2].keyword)]
    if not typed and fallback:
        present = next((item for item in elements if item[2].keyword == fallback), None)
        if present is not None:
            path, depth, elem, shown, _ = present
            attribute = GroundingAttribute(format_tag(elem.tag), fallback, elem.name, shown, 9.0, path)
            typed = [(9.0, depth, attribute)]
        elif fallback not in hidden:
            typed = [(9.0, 0, _valueless(fallback, 9.0))]
        elif include_removed:
            typed = [(9.0, 0, _valueless(fallback, 9.0, removed=True))]
    return typed + [entry for entry in found if not agrees(entry[2].keyword)]


_PLACE_STEMS = frozenset(
    {"institut", "station", "depart", "locat", "posit", "site", "address", "bodi", "later"}
)


@cache
def _place(keyword: str) -> bool:
    return bool(_attribute_tokens(keyword) & _PLACE_STEMS)


def _counted(query: _Query) -> frozenset[str]:
    """The stems of the words "how many" counts ("how many bits are used per pixel?": bit)."""
    words = query.ordered
    for index in range(len(words) - 2):
        if words[index] == "how" and words[index + 1] in ("many", "much"):
            counted = []
            for word in words[index + 2 :]:
                if word in _stopwords():
                    break
                counted.append(_stem(word))
            return frozenset(counted)
    return frozenset()


def _counts(keyword: str, counted: frozenset[str]) -> bool:
    """Whether the attribute's name, wording or unit names what is counted."""
    stems = set(_attribute_tokens(keyword))
    for phrase in _synonym_phrases().get(keyword, ()):
        stems.update(phrase)
    unit = grounding_vocabulary()["units"].get(keyword)
    if unit:
        stems.update(_words(str(unit)))
    return bool(stems & counted)


def names_an_attribute(question: str, ds: Dataset) -> bool:
    """Whether the question states the whole dictionary name (two words or more, in order, stop words
    aside) of an attribute this header carries: "how many images were in this acquisition?" asks for
    Images in Acquisition, not for the study's image count."""
    content = tuple(_stem(word) for word in question_words(question) if word not in _stopwords())
    for _, _, elem in _walk(ds):
        phrase = _name_phrase(elem.keyword) if elem.keyword else ()
        if len(phrase) >= 2 and _contains(content, phrase) and format_value(elem):
            return True
    return False


def _decisive(found: list[tuple[float, int, GroundingAttribute]]) -> bool:
    """A strong lexical match well ahead of the next attribute: embeddings would not change the answer."""
    if not found or found[0][0] < _DECISIVE_SCORE:
        return False
    runner_up = found[1][0] if len(found) > 1 else 0.0
    return runner_up <= _DECISIVE_RATIO * found[0][0]


@cache
def attribute_texts(keyword: str) -> tuple[str, ...]:
    """What a semantic scorer compares the question with: the dictionary name and the clinician wording."""
    tag = _tag_for_keyword(keyword)
    name = dictionary_description(tag) if tag is not None else " ".join(_split_keyword(keyword))
    vocabulary = grounding_vocabulary()
    wording = list(vocabulary["synonyms"].get(keyword, ())) + list(vocabulary["phi"].get(keyword, ()))
    return tuple(dict.fromkeys([name, *wording]))


def grounding_keywords() -> set[str]:
    """Keywords the clinician wording of data/grounding.yaml names (retrievable and removed ones)."""
    vocabulary = grounding_vocabulary()
    return set(vocabulary["synonyms"]) | set(vocabulary["phi"])


def _valueless(keyword: str, score: float, *, removed: bool = False) -> GroundingAttribute:
    tag = _tag_for_keyword(keyword)
    name = dictionary_description(tag) if tag is not None else keyword
    tag_text = format_tag(tag) if tag is not None else ""
    return GroundingAttribute(tag_text, keyword, name, "", round(score, 4), tag_text, False, removed)


def _answer_type_agrees(query: _Query, similar: dict[str, float]) -> dict[str, float]:
    """Semantic evidence for a date or time attribute only when the question asks about a moment or
    a duration ("when", "date", "how long ago"): a sentence embedding finds "what machine took these
    pictures?" close to "when was the image taken?", and would answer a device question with a date."""
    if query.words & _time_words():
        return similar
    return {keyword: value for keyword, value in similar.items() if not _temporal(keyword)}


@cache
def _time_words() -> frozenset[str]:
    return frozenset(grounding_vocabulary()["time_words"].split())


@cache
def _temporal(keyword: str) -> bool:
    from pydicom.datadict import dictionary_VR

    tag = _tag_for_keyword(keyword)
    try:
        return tag is not None and dictionary_VR(tag) in ("DA", "TM", "DT")
    except KeyError:
        return False


def _semantic_bonus(similarity: float | None) -> float:
    if similarity is None or similarity <= _SEMANTIC_FLOOR:
        return 0.0
    return _SEMANTIC_WEIGHT * (similarity - _SEMANTIC_FLOOR)


def removed_phi_requested(
    question: str, profile: DeidProfile | None = None, *, options: DeidOptions | None = None
) -> list[str]:
    """Keywords the question asks for whose values de-identification removed or replaced."""
    removed = _removed_keywords(profile, options)
    query = _Query(question)
    requested = list(_removed_phrase_scores(query, removed))
    for keyword in sorted(removed):
        # Whole dictionary names count only when they have two or more words, asked as a phrase: single
        # words such as "Date" or "Time" (0040,A121/A122) would otherwise claim every question about
        # echo time, and "the repetition time of this acquisition" is not about Acquisition Time.
        if keyword not in requested and _whole_name_score(query, keyword) > 0:
            requested.append(keyword)
    named = _people_named(query, removed)
    if named:
        # A person asked for by one of its words ("physician": Physician(s) of Record) gives way to
        # one the question names by more ("physician ... performed").
        phrased = _removed_phrase_scores(query, removed)
        best = max(named.values())
        requested = [
            keyword
            for keyword in requested
            if keyword not in _person_attributes() or phrased.get(keyword, best) >= best
        ]
        requested.extend(keyword for keyword in named if keyword not in requested)
    elif not any(keyword in _person_attributes() for keyword in requested):
        requested.extend(_person_asked(query, removed))
    return requested


def _people_named(query: _Query, removed: frozenset[str]) -> dict[str, float]:
    """Removed person-name (PN) attributes and identifiers (names ending "ID" or "Number") whose name
    words are all in the question, in any order: "which physician performed the exam?" asks for
    Performing Physician's Name as surely as "the performing physician" does, "the id number of the
    patient" for Patient ID. A PN attribute holds a name, so "name" may go unsaid when two other words
    of its name are there; Patient's Name needs both its words. Where one attribute's words include
    another's (Scheduled Performing Physician's Name), the one with more words asked is kept."""
    named = [keyword for keyword in _named_people() & removed if _person_stems(keyword) <= query.content]
    return {
        keyword: 6.0 + 3.0 * len(_person_stems(keyword))  # as a phrase of as many words
        for keyword in sorted(named)
        if not any(_person_stems(keyword) < _person_stems(other) for other in named)
    }


def _person_asked(query: _Query, removed: frozenset[str]) -> dict[str, float]:
    """ "Who", "whom" or "whose" asks for a person: the removed PN attributes sharing the largest part
    of their name with the question ("who verified the report?": Verifying Observer Name)."""
    if not query.words & _WHO:
        return {}
    coverage = {}
    for keyword in _person_attributes() & removed:
        stems = _person_stems(keyword) - {"name"}
        if stems & query.content:
            coverage[keyword] = len(stems & query.content) / len(stems)
    best = max(coverage.values(), default=0.0)
    return {keyword: 6.0 + 3.0 * best for keyword in sorted(coverage) if coverage[keyword] == best}


_WHO = frozenset({"who", "whom", "whose"})
_IDENTIFIER_ENDINGS = frozenset({"id", "ids", "number", "numbers"})


@cache
def _person_attributes() -> frozenset[str]:
    """Keywords of PN attributes (a person's name) with a name of two stems or more."""
    return frozenset(
        entry[4]
        for entry in DicomDictionary.values()
        if entry[0] == "PN" and entry[4] and len(_person_stems(entry[4])) >= 2
    )


@cache
def _named_people() -> frozenset[str]:
    """PN attributes and identifiers ("Patient ID", "Accession Number") found by all their name words."""
    identifiers = {
        entry[4]
        for entry in DicomDictionary.values()
        if entry[4]
        and entry[0] in ("LO", "SH", "CS")
        and (_words(entry[2]) or [""])[-1] in _IDENTIFIER_ENDINGS
        and len(_person_stems(entry[4])) >= 2
    }
    return _person_attributes() | identifiers


@cache
def _person_stems(keyword: str) -> frozenset[str]:
    stems = [stem for stem in _name_phrase(keyword) if len(stem) > 1]
    others = [stem for stem in stems if stem != "name"]
    return frozenset(others if len(others) >= 2 else stems)


def _removed_phrase_scores(query: _Query, removed: frozenset[str]) -> dict[str, float]:
    """Removed keyword -> bonus for its longest PHI wording asked, one-word wordings that are part of
    a kept attribute's name in the question left out (`_named_elsewhere`)."""
    scores: dict[str, float] = {}
    for keyword, phrases in _phi_phrases().items():
        if keyword not in removed:
            continue
        asked = [phrase for phrase in phrases if query.asks(phrase)]
        best = max(
            (len(phrase) for phrase in asked if not _named_elsewhere(query, phrase, removed)), default=0
        )
        if best:
            scores[keyword] = 6.0 + 3.0 * best
    return scores


def _named_elsewhere(query: _Query, phrase: tuple[str, ...], removed: frozenset[str]) -> bool:
    """A one-word PHI wording is asked as part of a two-word run of the name of an attribute the copy
    keeps: stemming makes "operator" (Operators' Name) match "operation", but "what mask operation was
    used?" asks for Mask Operation, not for who operated the scanner, and "clinical trial" is not
    the clinic that made the study."""
    if len(phrase) != 1:
        return False
    stem = phrase[0]
    for keyword, name in _multiword_names().items():
        if keyword in removed or stem not in name:
            continue
        at = name.index(stem)
        before, after = name[at - 1 : at + 1] if at else (), name[at : at + 2]
        if (len(before) == 2 and query.asks(before)) or (len(after) == 2 and query.asks(after)):
            return True
    return False


@cache
def _multiword_names() -> dict[str, tuple[str, ...]]:
    keywords = (entry[4] for entry in DicomDictionary.values() if entry[4])
    return {keyword: phrase for keyword in keywords if len(phrase := _name_phrase(keyword)) >= 2}
