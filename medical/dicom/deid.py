"""De-identify a DICOM data set with the table-driven PS3.15 Basic Application Level Confidentiality Profile.

Actions (PS3.15 E.1-1): D dummy value of the same VR, Z zero length, X remove, K keep (sequences are
still walked), C clean, U replace a UID with HMAC-SHA256(uid_key, uid) written as "2.25.<int>". The
profile is applied recursively inside sequences and to the file meta. Private attributes, curves and
overlays are removed. Patient Name and Patient ID both become one keyed pseudonym, so a patient's
studies stay linked across uploads and the DICOM network without the suite keeping the original ID.

The input data set is not modified; `deidentify` works on a deep copy and reports which attribute
got which action, never the original values.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import re
import warnings
from dataclasses import dataclass
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import UID

from medical.dicom.profile import DeidOptions, DeidProfile, burned_in_text_sources, load_basic_profile
from medical.dicom.structure import format_tag

# A fixed implementation identity for the File Meta Information this de-identifier writes (PS3.15 E.1.1
# step 7 asks that the meta describe the de-identifying application, not the original sender).
IMPLEMENTATION_CLASS_UID = "2.25.213018458744627404935476398357436071917"
IMPLEMENTATION_VERSION_NAME = "SUITE_DEID_1"
PATIENT_NAME_TAG, PATIENT_ID_TAG = 0x00100010, 0x00100020
# File meta attributes that name the sending system or carry private payloads.
_META_REMOVED = (
    0x00020016,
    0x00020017,
    0x00020018,
    0x00020026,
    0x00020027,
    0x00020028,
    0x00020100,
    0x00020102,
)
_TEXT_DUMMY = "ANONYMIZED"
_DUMMY_BY_VR: dict[str, Any] = {
    "AE": _TEXT_DUMMY, "AS": "000D", "CS": _TEXT_DUMMY, "DA": "19000101", "DT": "19000101000000",
    "TM": "000000", "DS": "0", "IS": "0", "LO": _TEXT_DUMMY, "LT": _TEXT_DUMMY, "PN": _TEXT_DUMMY,
    "SH": _TEXT_DUMMY, "ST": _TEXT_DUMMY, "UC": _TEXT_DUMMY, "UT": _TEXT_DUMMY, "UR": "urn:anonymized",
    "FL": 0.0, "FD": 0.0, "SL": 0, "SS": 0, "SV": 0, "UL": 0, "US": 0, "UV": 0, "AT": 0,
}  # fmt: skip
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_TEXT_VRS = frozenset({"AE", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
_IDENTIFIER_VRS = frozenset({"PN", "LO", "SH", "AE", "DA", "DT", "LT", "ST", "UT", "UC"})
# Shapes that identify whatever attribute they sit in: dates, long digit runs, e-mail, phone numbers.
_IDENTIFYING_PATTERNS = re.compile(
    r"\b\d{4}[-/.]?\d{2}[-/.]?\d{2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b|\d{5,}|\S+@\S+|\+?\d[\d ()-]{7,}\d"
)


@dataclass(frozen=True)
class AppliedAction:
    tag: str  # "(0010,0010)"
    keyword: str
    action: str  # the action carried out: D, Z, X, K, C or U
    # Why: the table code ("X/Z/D"), or "private", "overlay", "person name not in table", "file meta".
    rule: str
    path: str  # where: "(0008,1111)[0].(0008,1155)" for an attribute inside a sequence item


@dataclass(frozen=True)
class DeidResult:
    dataset: Dataset
    actions: tuple[AppliedAction, ...]
    burned_in: str  # "yes" | "no" | "unknown": keep "yes"/"unknown" instances away from models until reviewed
    patient_pseudonym: str
    profile_name: str
    options: DeidOptions


def pseudonymize_uid(uid: str, *, uid_key: bytes) -> str:
    """Keyed, stable replacement UID: the same original and key always give the same "2.25." UID."""
    digest = hmac.new(
        uid_key, str(uid).strip().rstrip("\x00").encode("ascii", "replace"), hashlib.sha256
    ).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def patient_pseudonym(ds: Dataset, *, uid_key: bytes) -> str:
    """Pseudonym "ANON-<10 hex>" keyed on Patient ID, so a patient's studies link (on the study if no ID)."""
    patient_id = str(ds.get("PatientID", "") or "").strip()
    material = (
        f"patient\x1f{patient_id}"
        if patient_id
        else f"study\x1f{str(ds.get('StudyInstanceUID', '')).strip()}"
    )
    return "ANON-" + hmac.new(uid_key, material.encode("utf-8"), hashlib.sha256).hexdigest()[:10].upper()


def burned_in_status(ds: Dataset) -> str:
    """The Burned In Annotation answer, or "unknown" when it is absent on a source that burns text in."""
    stated = str(ds.get("BurnedInAnnotation", "") or "").strip().upper()
    if stated in ("YES", "NO"):
        return stated.lower()
    modalities, sop_classes = burned_in_text_sources()
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in modalities or str(ds.get("SOPClassUID", "")).strip() in sop_classes:
        return "unknown"
    return "no"


def deidentify(
    ds: Dataset, *, uid_key: bytes, profile: DeidProfile | None = None, options: DeidOptions | None = None
) -> DeidResult:
    if not uid_key:
        raise ValueError("uid_key must be a non-empty secret")
    profile = profile or load_basic_profile()
    options = options or DeidOptions()
    pseudonym = patient_pseudonym(ds, uid_key=uid_key)
    run = _Run(profile=profile, options=options, uid_key=uid_key, pseudonym=pseudonym)
    if options.keep_descriptors or any(rule.action(options) == "C" for rule in profile.rules.values()):
        run.identifiers = _identifying_strings(ds, profile, options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's complaints about the sender's values change nothing here
        out = copy.deepcopy(ds)
        run.walk(out, path="")
        _rewrite_file_meta(out, run)
        _stamp(out, pseudonym=pseudonym, options=options)
    return DeidResult(
        dataset=out,
        actions=tuple(run.actions),
        burned_in=burned_in_status(ds),
        patient_pseudonym=pseudonym,
        profile_name=profile.name,
        options=options,
    )


class _Run:
    def __init__(self, *, profile: DeidProfile, options: DeidOptions, uid_key: bytes, pseudonym: str) -> None:
        self.profile = profile
        self.options = options
        self.uid_key = uid_key
        self.pseudonym = pseudonym
        self.identifiers: tuple[str, ...] = ()
        self.actions: list[AppliedAction] = []

    def record(self, elem: DataElement, action: str, rule: str, path: str) -> None:
        self.actions.append(AppliedAction(format_tag(elem.tag), elem.keyword, action, rule, path))

    def walk(self, dataset: Dataset, *, path: str) -> None:
        for elem in list(dataset):
            tag = int(elem.tag)
            where = f"{path}{format_tag(tag)}"
            if elem.tag.is_private:
                del dataset[tag]
                self.record(elem, "X", "private", where)
                continue
            if tag & 0xFFFF == 0 and tag >> 16 != 0x0002:
                del dataset[tag]  # group lengths are retired and would be wrong after the changes below
                continue
            if _is_overlay_group(tag):
                overlay_action = self.profile.action_for(0x60003000, self.options)
                if overlay_action and overlay_action != "K":
                    # Overlay Data may spell a name; without it the rest of the overlay group is invalid.
                    del dataset[tag]
                    self.record(elem, "X", "overlay", where)
                    continue
            rule = self.profile.rule_for(tag)
            if rule is None:
                self._unlisted(dataset, elem, where)
                continue
            self.apply(dataset, elem, rule.action(self.options), rule.basic, where)

    def _unlisted(self, dataset: Dataset, elem: DataElement, where: str) -> None:
        if elem.VR == "SQ":
            self._walk_items(elem, where)
        elif elem.VR == "PN" and self.options.scrub_unlisted_person_names and not elem.is_empty:
            self.apply(dataset, elem, "Z", "person name not in table", where)

    def _walk_items(self, elem: DataElement, where: str) -> None:
        for index, item in enumerate(elem.value or ()):
            self.walk(item, path=f"{where}[{index}].")

    def apply(self, dataset: Dataset, elem: DataElement, action: str, rule: str, where: str) -> None:
        tag = int(elem.tag)
        if action == "X":
            del dataset[tag]
        elif tag in (PATIENT_NAME_TAG, PATIENT_ID_TAG) and action in ("Z", "D", "C"):
            elem.value = self.pseudonym
            action = "D"
        elif action == "Z":
            elem.value = Sequence() if elem.VR == "SQ" else None
        elif action == "D":
            self._dummy(elem)
        elif action == "U":
            if elem.VR == "UI":
                self._remap_uids(elem)
            else:
                self._dummy(elem)
                action = "D"
        elif action == "C":
            action = self._clean(elem, where)
        elif action == "K" and elem.VR == "SQ":
            self._walk_items(elem, where)  # PS3.15: keeping a sequence still applies the profile inside it
        self.record(elem, action, rule, where)

    def _remap_uids(self, elem: DataElement) -> None:
        if elem.is_empty:
            return
        values = elem.value if elem.VM > 1 else [elem.value]
        mapped = [
            UID(pseudonymize_uid(value, uid_key=self.uid_key)) for value in values if str(value).strip()
        ]
        elem.value = mapped if elem.VM > 1 else mapped[0]

    def _dummy(self, elem: DataElement) -> None:
        if elem.VR == "SQ":
            for item in elem.value or ():
                self._dummy_items(item)
        elif elem.VR == "UI":
            self._remap_uids(elem)  # a dummy UID must still be unique and consistent, so it is keyed too
        elif elem.VR in _BINARY_VRS:
            elem.value = b"\x00\x00"
        else:
            elem.value = _DUMMY_BY_VR.get(elem.VR, _TEXT_DUMMY)

    def _dummy_items(self, item: Dataset) -> None:
        """D on a sequence: keep its structure, remove what the table removes, dummy every other value."""
        for inner in list(item):
            if inner.tag.is_private or self.profile.action_for(inner.tag, self.options) == "X":
                del item[inner.tag]
            elif not inner.is_empty:
                self._dummy(inner)

    def _clean(self, elem: DataElement, where: str) -> str:
        if elem.VR == "SQ":
            self._walk_items(elem, where)
            return "C"
        if elem.VR not in _TEXT_VRS or elem.is_empty:
            self._dummy(elem)
            return "D"
        values = elem.value if elem.VM > 1 else [elem.value]
        cleaned = [_clean_text(str(value), self.identifiers) for value in values]
        elem.value = cleaned if elem.VM > 1 else cleaned[0]
        return "C"


def _clean_text(text: str, identifiers: tuple[str, ...]) -> str:
    """Keep a description's meaning, drop the instance's own identifiers and identifier-shaped tokens."""
    for identifier in identifiers:
        text = re.sub(re.escape(identifier), " ", text, flags=re.IGNORECASE)
    text = _IDENTIFYING_PATTERNS.sub(" ", text)
    return re.sub(r"\s+", " ", text).strip()


def _identifying_strings(ds: Dataset, profile: DeidProfile, options: DeidOptions) -> tuple[str, ...]:
    """Text of the attributes the profile removes or replaces, to scrub out of cleaned descriptions."""
    found: set[str] = set()
    for elem in ds.iterall():
        if elem.VR not in _IDENTIFIER_VRS or elem.is_empty or elem.tag.is_private:
            continue
        rule = profile.rule_for(elem.tag)
        if rule is None and elem.VR != "PN":
            continue
        if rule is not None and rule.action(options) in ("K", "C"):
            continue
        values = elem.value if elem.VM > 1 else [elem.value]
        for value in values:
            text = str(value).strip()
            found.add(text)
            found.update(part for part in re.split(r"[\^=\s,]+", text) if len(part) >= 3)
    return tuple(sorted((text for text in found if len(text) >= 2), key=len, reverse=True))


def _is_overlay_group(tag: int) -> bool:
    group = tag >> 16
    return 0x6000 <= group <= 0x601E and group % 2 == 0


def _rewrite_file_meta(ds: Dataset, run: _Run) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if hasattr(ds, "preamble") and ds.preamble is not None:
        ds.preamble = b"\x00" * 128  # the preamble is free-form and may hold anything the sender wrote
    for tag in _META_REMOVED:
        if tag in meta:
            run.record(meta[tag], "X", "file meta", format_tag(tag))
            del meta[tag]
    if "MediaStorageSOPInstanceUID" in meta:
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID  # already remapped (or kept) in the data set
        rule = run.profile.rule_for(0x00020003)
        run.record(
            meta["MediaStorageSOPInstanceUID"],
            rule.action(run.options) if rule else "U",
            "file meta",
            "(0002,0003)",
        )
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME


def _stamp(ds: Dataset, *, pseudonym: str, options: DeidOptions) -> None:
    """PS3.15 E.1.1 step 6: say that identity was removed, and how."""
    ds.PatientName = pseudonym
    ds.PatientID = pseudonym
    ds.PatientIdentityRemoved = "YES"
    codes = options.method_codes()
    ds.DeidentificationMethod = [meaning[:64] for _, meaning in codes]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = items
    ds.LongitudinalTemporalInformationModified = (
        "UNMODIFIED" if options.retain_longitudinal_dates else "REMOVED"
    )
