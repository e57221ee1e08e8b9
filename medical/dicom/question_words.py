"""A clinician's question as words grounding can compare with DICOM attribute names.

Two normalisations, both general (they apply to every attribute, none to one question):

- Shorthand clinicians type is written out with the words the data dictionary uses ("pt" -> "patient",
  "freq" -> "frequency", "doc" -> "physician", "ww" -> "window width"): the `abbreviations` section of
  data/grounding.yaml.
- A word that is neither in the vocabulary (the data dictionary's names and keywords, the clinician
  wording and the stop words of data/grounding.yaml) nor an English word (pyspellchecker's English word
  list) is read as the one vocabulary word it is a typing slip away from ("repitition", "thicknes",
  "strenght", "colour" -> "color", "organisation" -> "organization"): optimal string alignment
  distance 1 (2 for words of eight letters or more, counted by rapidfuzz), the same first letter, and
  only when exactly one word is that close. English words stay as typed even when a vocabulary word is
  one letter away ("reader" is not "render", "sent" not "set"), as do words under four letters and
  numbers.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

from pydicom.datadict import DicomDictionary
from rapidfuzz import process
from rapidfuzz.distance import OSA

from medical.dicom.values import grounding_vocabulary

__all__ = ["question_words", "split_words"]

_MIN_CORRECTED_LENGTH = 4
_LONG_WORD = 8


def split_words(text: str) -> list[str]:
    """Lower-case words of a text ("Patient's Name" -> ["patient", "name"])."""
    text = text.lower().replace("\u2019", "'").replace("'s", "")
    return re.findall(r"[a-z0-9]+", text)


def question_words(question: str) -> list[str]:
    """The question's words with shorthand written out and slips of the keyboard corrected."""
    words: list[str] = []
    for word in split_words(question):
        expansion = _abbreviations().get(word)
        if expansion is not None:
            words.extend(expansion)
        else:
            words.append(corrected(word))
    return words


@lru_cache(maxsize=8192)
def corrected(word: str) -> str:
    """`word`, or the one vocabulary word it is a typing slip away from."""
    if len(word) < _MIN_CORRECTED_LENGTH or not word.isalpha() or word in _vocabulary() or word in _english():
        return word
    for variant in _american(word):
        if variant in _vocabulary() or variant in _english():
            return variant
    distance = 2 if len(word) >= _LONG_WORD else 1
    matches = process.extract(
        word, _by_initial().get(word[0], ()), scorer=OSA.distance, score_cutoff=distance, limit=None
    )
    if not matches:
        return word
    best = min(score for _, score, _ in matches)
    closest = [choice for choice, score, _ in matches if score == best]
    return closest[0] if len(closest) == 1 else word


_BRITISH = (
    (re.compile(r"is(e|ed|es|ing|ation|ations|er|ers)$"), r"iz\1"),  # digitised -> digitized
    (re.compile(r"ys(e|ed|es|ing)$"), r"yz\1"),  # analysed -> analyzed
    (re.compile(r"our(s?)$"), r"or\1"),  # tumour -> tumor
    (re.compile(r"tre(s?)$"), r"ter\1"),  # centre -> center
    (re.compile(r"(?<=.)(ae|oe)"), "e"),  # haematoma -> hematoma, oedema -> edema
)


def _american(word: str) -> list[str]:
    """The American spellings of a British word (the data dictionary writes American English)."""
    return [pattern.sub(replacement, word) for pattern, replacement in _BRITISH if pattern.search(word)]


@cache
def _english():
    """English words (pyspellchecker's word frequency list, loaded once per process, ~0.5 s)."""
    from spellchecker import SpellChecker

    return SpellChecker(language="en", distance=1)


@cache
def _abbreviations() -> dict[str, tuple[str, ...]]:
    section = grounding_vocabulary().get("abbreviations") or {}
    return {str(short).lower(): tuple(split_words(str(full))) for short, full in section.items()}


@cache
def _vocabulary() -> frozenset[str]:
    vocabulary = grounding_vocabulary()
    words: set[str] = set()
    for entry in DicomDictionary.values():
        words.update(split_words(entry[2]))
        words.update(word.lower() for word in re.findall(r"[A-Z]?[a-z]+", entry[4]))
    for section in ("synonyms", "phi"):
        for phrases in vocabulary[section].values():
            for phrase in phrases:
                words.update(split_words(str(phrase)))
    for meanings in vocabulary["labels"].values():
        for meaning in meanings.values():
            words.update(split_words(str(meaning)))
    words.update(vocabulary["stopwords"].split())
    words.update(vocabulary["time_words"].split())
    for short, full in (vocabulary.get("abbreviations") or {}).items():
        words.add(str(short).lower())
        words.update(split_words(str(full)))
    return frozenset(word for word in words if word.isalpha())


@cache
def _by_initial() -> dict[str, tuple[str, ...]]:
    """Vocabulary words of three letters or more by first letter (a slip rarely changes the first)."""
    grouped: dict[str, list[str]] = {}
    for word in sorted(_vocabulary()):
        if len(word) >= 3:
            grouped.setdefault(word[0], []).append(word)
    return {initial: tuple(words) for initial, words in grouped.items()}
