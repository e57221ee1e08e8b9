"""The de-identification profile (PS3.15 Table E.1-1) and the options that relax it, read from data files.

profiles/basic_profile.csv holds one row per attribute with the standard's Basic Profile code, the
single action this suite applies, and the code each supported option substitutes. The CSV header
documents how combined codes (X/Z, X/D, X/Z/D, Z/D, X/Z/U*) are resolved. profiles/deid_options.yaml
holds the option defaults and the code values written to De-identification Method Code Sequence.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path

import yaml

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
BASIC_PROFILE_CSV = PROFILES_DIR / "basic_profile.csv"
OPTIONS_YAML = PROFILES_DIR / "deid_options.yaml"

SINGLE_ACTIONS = frozenset({"D", "Z", "X", "K", "C", "U"})
# CSV option column -> DeidOptions field that switches it on.
OPTION_COLUMNS = {
    "retain_uids": "retain_uids",
    "retain_device_identity": "retain_device_identity",
    "retain_institution_identity": "retain_institution_identity",
    "retain_patient_characteristics": "retain_patient_characteristics",
    "retain_longitudinal_dates": "retain_longitudinal_dates",
    "clean_descriptors": "keep_descriptors",
}
_TAG_PATTERN = re.compile(r"^\(([0-9A-Fa-fx]{4}),([0-9A-Fa-fx]{4})\)$")


@cache
def _options_file() -> Mapping:
    with OPTIONS_YAML.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _default(name: str):
    return lambda: bool(_options_file()["defaults"][name])


@dataclass(frozen=True)
class DeidOptions:
    """PS3.15 E.3 options this suite supports; defaults come from profiles/deid_options.yaml."""

    retain_longitudinal_dates: bool = field(default_factory=_default("retain_longitudinal_dates"))
    retain_patient_characteristics: bool = field(default_factory=_default("retain_patient_characteristics"))
    retain_device_identity: bool = field(default_factory=_default("retain_device_identity"))
    retain_institution_identity: bool = field(default_factory=_default("retain_institution_identity"))
    retain_uids: bool = field(default_factory=_default("retain_uids"))
    keep_descriptors: bool = field(default_factory=_default("keep_descriptors"))
    scrub_unlisted_person_names: bool = field(default_factory=_default("scrub_unlisted_person_names"))

    def enabled(self) -> tuple[str, ...]:
        return tuple(
            f.name
            for f in fields(self)
            if getattr(self, f.name) and f.name in _options_file()["method_codes"]
        )

    def method_codes(self) -> tuple[tuple[str, str], ...]:
        """(code value, code meaning) for the profile and each enabled option, DCM scheme."""
        codes = _options_file()["method_codes"]
        return tuple(tuple(codes[name]) for name in ("basic_profile", *self.enabled()))


@dataclass(frozen=True)
class ProfileRule:
    tag: str
    keyword: str
    name: str
    basic: str
    applied: str
    option_codes: Mapping[str, str]

    def action(self, options: DeidOptions) -> str:
        """The action for this attribute under `options`: an option overrides the profile, K over C."""
        chosen = [
            code
            for column, code in self.option_codes.items()
            if code and getattr(options, OPTION_COLUMNS[column])
        ]
        if "K" in chosen:
            return "K"
        if "C" in chosen:
            return "C"
        return self.applied


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: profiles are loaded once
class DeidProfile:
    name: str
    rules: Mapping[int, ProfileRule]
    # Repeating-group rows ("50xx,xxxx", "60xx,3000"): (mask, value, rule), matched as tag & mask == value.
    masked_rules: tuple[tuple[int, int, ProfileRule], ...]

    def rule_for(self, tag: int) -> ProfileRule | None:
        rule = self.rules.get(int(tag))
        if rule is not None:
            return rule
        for mask, value, masked in self.masked_rules:
            if int(tag) & mask == value:
                return masked
        return None

    def action_for(self, tag: int, options: DeidOptions) -> str | None:
        rule = self.rule_for(tag)
        return rule.action(options) if rule else None

    def replaced_keywords(self, options: DeidOptions) -> frozenset[str]:
        """Keywords of attributes whose original value does not survive under `options`."""
        return frozenset(
            rule.keyword for rule in self.rules.values() if rule.keyword and rule.action(options) != "K"
        )


@cache
def load_basic_profile() -> DeidProfile:
    return load_profile(
        BASIC_PROFILE_CSV, name="DICOM PS3.15 Basic Application Level Confidentiality Profile"
    )


def load_profile(path: Path, *, name: str) -> DeidProfile:
    rules: dict[int, ProfileRule] = {}
    masked: list[tuple[int, int, ProfileRule]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        for row in csv.DictReader(lines):
            rule = _rule_from_row(row, path)
            match = _TAG_PATTERN.match(rule.tag)
            hex_digits = match.group(1) + match.group(2)
            if "x" in hex_digits.lower():
                mask = int("".join("0" if c in "xX" else "F" for c in hex_digits), 16)
                value = int("".join("0" if c in "xX" else c for c in hex_digits), 16)
                masked.append((mask, value, rule))
            else:
                rules[int(hex_digits, 16)] = rule
    return DeidProfile(name=name, rules=rules, masked_rules=tuple(masked))


def _rule_from_row(row: Mapping[str, str], path: Path) -> ProfileRule:
    tag = row["tag"].strip()
    applied = row["applied"].strip()
    option_codes = {column: (row.get(column) or "").strip() for column in OPTION_COLUMNS}
    if not _TAG_PATTERN.match(tag):
        raise ValueError(f"{path.name}: bad tag {tag!r}")
    for code in (applied, *option_codes.values()):
        if code and code not in SINGLE_ACTIONS:
            raise ValueError(
                f"{path.name}: {tag} has action {code!r}; expected one of {sorted(SINGLE_ACTIONS)}"
            )
    return ProfileRule(
        tag=tag,
        keyword=row["keyword"].strip(),
        name=row["name"].strip(),
        basic=row["basic"].strip(),
        applied=applied,
        option_codes=option_codes,
    )


def burned_in_text_sources() -> tuple[frozenset[str], frozenset[str]]:
    """(modalities, SOP class UIDs) that may carry burned-in text when the header does not say."""
    section = _options_file()["burned_in_text"]
    return frozenset(section["modalities"]), frozenset(str(uid) for uid in section["sop_classes"])
