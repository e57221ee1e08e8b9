"""Display strings for DICOM values: numbers without float noise, units, dates, and coded-value meanings.

Units and labels come from data/grounding.yaml, keyed by attribute keyword.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydicom.dataelem import DataElement
from pydicom.uid import UID

from medical.dicom.structure import format_tag

GROUNDING_YAML = Path(__file__).resolve().parent / "data" / "grounding.yaml"
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_FLOAT_VRS = frozenset({"DS", "FL", "FD"})
_INT_VRS = frozenset({"IS", "SL", "SS", "SV", "UL", "US", "UV"})
_AGE_UNITS = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
_PAIRED_BY_X = frozenset({"PixelSpacing", "ImagerPixelSpacing"})


@cache
def grounding_vocabulary() -> dict[str, Any]:
    with GROUNDING_YAML.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def format_value(elem: DataElement) -> str:
    """The element's value as a person reads it, e.g. "5 mm", "CT (Computed Tomography)", "2004-01-19"."""
    keyword = elem.keyword
    if elem.VR == "SQ":
        count = len(elem.value or ())
        return f"{count} item" + ("" if count == 1 else "s")
    if elem.VR in _BINARY_VRS:
        return f"{len(elem.value or b'')} bytes of binary data"
    if elem.is_empty:
        return ""
    values = list(elem.value) if elem.VM > 1 else [elem.value]
    parts = [_format_one(elem.VR, keyword, value) for value in values]
    parts = [part for part in parts if part]
    if not parts:
        return ""
    text = (" x " if keyword in _PAIRED_BY_X else ", ").join(parts)
    unit = grounding_vocabulary()["units"].get(keyword)
    return f"{text} {unit}" if unit else text


def _format_one(vr: str, keyword: str, value: Any) -> str:
    if value is None:
        return ""
    if vr in _FLOAT_VRS:
        return _number(value)
    if vr in _INT_VRS:
        try:
            return str(int(value))
        except (TypeError, ValueError):
            return str(value).strip()
    if vr == "AT":
        return format_tag(int(value))
    text = str(value).strip().rstrip("\x00")
    if vr == "UI":
        name = UID(text).name
        return f"{name} ({text})" if name and name != text else text
    if vr == "DA":
        return _iso_date(text)
    if vr == "TM":
        return _clock_time(text)
    if vr == "DT":
        return f"{_iso_date(text[:8])} {_clock_time(text[8:])}".strip() if len(text) >= 8 else text
    if vr == "AS" and len(text) == 4 and text[:3].isdigit() and text[3] in _AGE_UNITS:
        return f"{text} ({int(text[:3])} {_AGE_UNITS[text[3]]})"
    label = (grounding_vocabulary()["labels"].get(keyword) or {}).get(text)
    return f"{text} ({label})" if label else text


def _number(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value).strip()
    if number == int(number) and abs(number) < 1e15:
        return str(int(number))
    return format(number, ".8g")


def _iso_date(text: str) -> str:
    if len(text) == 8 and text.isdigit():
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def _clock_time(text: str) -> str:
    digits = text.split(".")[0]
    if len(digits) >= 4 and digits.isdigit():
        pieces = [digits[i : i + 2] for i in range(0, min(len(digits), 6), 2)]
        return ":".join(pieces)
    return text
