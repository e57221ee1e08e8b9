"""The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980), as the
snowballstemmer package implements it.

Grounding compares a clinician's words with DICOM attribute names and clinician wording by stem, so
that an inflection or derivation of a word finds the attribute: "operated", "operating", "operation"
and "operator" all stem to "oper" (Operators' Name), "performed" and "performing" to "perform"
(Performing Physician's Name). The original 1980 rules ("porter"), not the later Snowball English
revision. Input is a lower-case ASCII word.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import snowballstemmer

__all__ = ["porter_stem"]

# A snowballstemmer object keeps the word it works on in itself: one per thread (gthread web workers).
_local = threading.local()


@lru_cache(maxsize=65536)
def porter_stem(word: str) -> str:
    """The Porter stem of a lower-case word; words of one or two letters are their own stem (as in
    the author's reference implementation)."""
    if len(word) <= 2:
        return word
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("porter")
    return stemmer.stemWord(word)
