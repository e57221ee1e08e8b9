"""Name normalisation for sanctions screening: folding, transliteration, phonetic skeletons.

``normalize(name) -> tokens``: case folded; accents dropped (NFKD) and a small transliteration table
for letters NFKD keeps (ß, ø, ł, ı, Cyrillic, Greek); apostrophes and their mis-encodings ('?')
removed; hyphens and dots split tokens; "SURNAME, Given" reordered to "Given SURNAME" (a suffix
such as "JR" after a comma stays put). ``skeleton(token)``: transliteration variants folded
(ou/u, kh/h, ph/f, y/i, e/a, o/u...) and doubled letters collapsed.
"""

from __future__ import annotations

import re
import unicodedata

SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})

_TRANSLIT = {
    "ß": "ss",
    "æ": "ae",
    "œ": "oe",
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "þ": "th",
    "ı": "i",
    "ħ": "h",
}
_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "_",
            "y",
            "_",
            "e",
            "yu",
            "ya",
        ],
        strict=True,
    )
)
_CYRILLIC = {k: ("" if v == "_" else v) for k, v in _CYRILLIC.items()}
_GREEK = dict(
    zip(
        "αβγδεζηθικλμνξοπρστυφχψω",
        [
            "a",
            "v",
            "g",
            "d",
            "e",
            "z",
            "i",
            "th",
            "i",
            "k",
            "l",
            "m",
            "n",
            "x",
            "o",
            "p",
            "r",
            "s",
            "t",
            "y",
            "f",
            "ch",
            "ps",
            "o",
        ],
        strict=True,
    )
)
_APOSTROPHES = "'’‘ʼʻ`´?\"“”"
_SPLIT = re.compile(r"[^\w]+|_")
_SKELETON_RULES = [
    ("ph", "f"),
    ("kh", "h"),
    ("gh", "g"),
    ("dh", "d"),
    ("th", "t"),
    ("sh", "s"),
    ("ck", "k"),
    ("ou", "u"),
    ("oo", "u"),
    ("ee", "i"),
    ("q", "k"),
    ("c", "k"),
    ("z", "s"),
    ("w", "v"),
    ("y", "i"),
    ("e", "a"),
    ("o", "u"),
    ("j", "i"),
]


def _fold_char(ch: str) -> str:
    low = ch.lower()
    if low in _TRANSLIT:
        return _TRANSLIT[low]
    if low in _CYRILLIC:
        return _CYRILLIC[low]
    if low in _GREEK:
        return _GREEK[low]
    return low


def normalize(name: str) -> list[str]:
    """Tokens of a name, folded for comparison (see module docstring, step 1)."""
    text = unicodedata.normalize("NFKC", str(name)).casefold()
    for a in _APOSTROPHES:
        text = text.replace(a, "")
    if text.count(",") == 1:
        head, tail = (p.strip() for p in text.split(","))
        text = f"{tail} {head}" if tail and tail.replace(".", "") not in SUFFIXES else f"{head} {tail}"
    text = "".join(_fold_char(c) for c in text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [t for t in _SPLIT.split(text) if t]


def skeleton(token: str) -> str:
    """Phonetic skeleton: transliteration variants folded, doubled letters collapsed."""
    s = token
    for a, b in _SKELETON_RULES:
        s = s.replace(a, b)
    out = []
    for c in s:
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)
