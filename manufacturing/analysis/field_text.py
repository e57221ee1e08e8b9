"""Normalising technician shorthand before it is embedded: "siezedjammed" -> "seized jammed",
"leak excessivly" -> "leak excessively", "u/s" -> "unserviceable".

Spelling rests on SymSpell (package symspellpy) and the English word-frequency list it ships
(82,765 words); the domain's own words (those of the training text that are English words) win a tie
at the same edit distance ("snaped": "snapped" before the commoner "shaped"). Two words written as one
are split where both halves are words (or one edit from one). A word of three letters or fewer, a
number, or a word nothing is found for stays as written. Only `ABBREVIATIONS` is maintained by hand:
shorthand of maintenance work orders that no spelling corrector can guess.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable

# Work-order shorthand, written once as data (general maintenance usage, not taken from any test file).
ABBREVIATIONS = {
    "u/s": "unserviceable",
    "us": "unserviceable",
    "o/s": "out of service",
    "c/o": "change out",
    "l/h": "left hand",
    "r/h": "right hand",
    "lh": "left hand",
    "rh": "right hand",
    "wont": "will not",
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "cant": "cannot",
    "isnt": "is not",
    "wasnt": "was not",
    "hyd": "hydraulic",
    "eng": "engine",
    "cyl": "cylinder",
    "temp": "temperature",
    "elec": "electrical",
    "mtr": "motor",
    "brg": "bearing",
    "vlv": "valve",
    "req": "requires",
    "reqs": "requires",
    "reqd": "required",
    "repl": "replace",
    "chk": "check",
    "insp": "inspect",
    "adj": "adjust",
    "inop": "inoperative",
    "lkg": "leaking",
    "vib": "vibration",
    "vibs": "vibration",
    "o/temp": "over temperature",
}

COMMON = 100_000_000  # a short word this frequent in the English list ("up", "off", "in") may be split off
_TOKEN = re.compile(r"[a-z]+/[a-z]+|[a-z]+|\d+")
_lock = threading.Lock()
_loaded: list = []


def _speller():
    """SymSpell over its bundled English frequency list, built once per process (a few seconds)."""
    if not _loaded:
        with _lock:
            if not _loaded:
                from importlib.resources import files

                from symspellpy import SymSpell

                speller = SymSpell(max_dictionary_edit_distance=2, prefix_length=7)
                path = files("symspellpy") / "frequency_dictionary_en_82_765.txt"
                speller.load_dictionary(str(path), term_index=0, count_index=1)
                _loaded.append(speller)
    return _loaded[0]


def english_words() -> dict[str, int]:
    return _speller().words


def domain_vocabulary(texts: Iterable[str], *, jargon: int = 3) -> Counter:
    """The domain's words with their counts, preferred in corrections: the English words of `texts`,
    and words written the same way at least `jargon` times (a trade's own word, "descale", "floc")."""
    words = english_words()
    counts = Counter(w for t in texts for w in _TOKEN.findall(str(t).lower()) if w.isalpha())
    return Counter({w: n for w, n in counts.items() if w in words or n >= jargon})


class Normaliser:
    """`normaliser(text)` -> lower-case text with shorthand expanded, misspellings corrected and joined
    words split. Results are cached per instance; the domain vocabulary is the only fitted state."""

    def __init__(self, domain: Counter | None = None):
        self.domain = Counter(domain or {})
        self._cache: dict[str, str] = {}
        self._jargon: list[str] | None = None

    def __getstate__(self) -> dict:
        return {"domain": self.domain}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["domain"])

    def jargon(self) -> list[str]:
        """The domain's words that SymSpell's English list lacks (corrections may land on them too)."""
        if self._jargon is None:
            words = english_words()
            self._jargon = sorted(w for w in self.domain if w not in words)
        return self._jargon

    def __call__(self, text: str) -> str:
        text = str(text).lower()
        if text not in self._cache:
            words = [self._word(token) for token in _TOKEN.findall(text)]
            self._cache[text] = " ".join(w for w in words if w) or text
        return self._cache[text]

    def _known(self, word: str) -> bool:
        return word in self.domain or word in english_words()

    def _correct(self, word: str, distance: int) -> tuple[str, int] | None:
        """The closest word within `distance` edits (domain words first, then the commoner), or None."""
        from rapidfuzz.distance import OSA
        from symspellpy import Verbosity

        if self._known(word):
            return word, 0
        if distance == 0:
            return None
        words = english_words()
        found = {
            s.term: s.distance for s in _speller().lookup(word, Verbosity.ALL, max_edit_distance=distance)
        }
        for term in self.jargon():
            edits = OSA.distance(word, term, score_cutoff=distance)
            if edits <= distance:
                found[term] = edits
        if not found:
            return None
        nearest = min(found.values())
        best = max(
            (term for term, edits in found.items() if edits == nearest),
            key=lambda term: (self.domain.get(term, 0), words.get(term, 0)),
        )
        return best, nearest

    def _word(self, token: str) -> str:
        if token in ABBREVIATIONS:
            return ABBREVIATIONS[token]
        if "/" in token:
            return " ".join(self._word(part) for part in token.split("/"))
        if len(token) <= 3 or token.isdigit() or self._known(token):
            return token
        close = self._correct(token, 1)
        if close is not None:
            return close[0]
        split = self._split(token)
        if split is not None:
            return split
        if len(token) >= 6:
            close = self._correct(token, 2)
            if close is not None:
                return close[0]
        return token

    def _split(self, token: str) -> str | None:
        """Two words written as one: the split whose halves need the fewest edits (at most one in all).
        A half of three letters or fewer must be written right and be a common word or the domain's."""
        words = english_words()
        best = None
        for cut in range(3, len(token) - 1):
            halves = token[:cut], token[cut:]
            if any(len(h) <= 3 and h not in self.domain and words.get(h, 0) < COMMON for h in halves):
                continue
            left, right = (self._correct(h, 0 if len(h) <= 3 else 1) for h in halves)
            if left is None or right is None:
                continue
            edits = left[1] + right[1]
            score = (edits, -min(self.domain.get(left[0], 0), self.domain.get(right[0], 0)))
            if best is None or score < best[0]:
                best = (score, f"{left[0]} {right[0]}")
        return best[1] if best is not None and best[0][0] <= 1 else None
