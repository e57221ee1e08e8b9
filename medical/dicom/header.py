"""Header fields clinicians filter and sort on, read from a DE-IDENTIFIED data set.

Values come back typed for storage: text as str, counts as int, dates and times as datetime objects,
and None for anything absent, empty or unparseable (a de-identified header is full of emptied fields).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pydicom.valuerep import DA, TM

_TEXT_FIELDS = {
    "patient_pseudonym": "PatientID",
    "patient_sex": "PatientSex",
    "patient_age": "PatientAge",
    "study_instance_uid": "StudyInstanceUID",
    "study_description": "StudyDescription",
    "accession_number": "AccessionNumber",
    "study_id": "StudyID",
    "modality": "Modality",
    "body_part_examined": "BodyPartExamined",
    "series_instance_uid": "SeriesInstanceUID",
    "series_description": "SeriesDescription",
    "sop_instance_uid": "SOPInstanceUID",
    "sop_class_uid": "SOPClassUID",
    "manufacturer": "Manufacturer",
    "manufacturer_model_name": "ManufacturerModelName",
    "photometric_interpretation": "PhotometricInterpretation",
    "burned_in_annotation": "BurnedInAnnotation",
}
_INT_FIELDS = {
    "series_number": "SeriesNumber",
    "instance_number": "InstanceNumber",
    "rows": "Rows",
    "columns": "Columns",
    "number_of_frames": "NumberOfFrames",
}


def index_fields(ds: Dataset) -> dict[str, Any]:
    fields: dict[str, Any] = {name: _text(ds, keyword) for name, keyword in _TEXT_FIELDS.items()}
    fields.update({name: _integer(ds, keyword) for name, keyword in _INT_FIELDS.items()})
    if fields["number_of_frames"] is None and "PixelData" in ds:
        fields["number_of_frames"] = 1
    fields["study_date"] = _date(ds.get("StudyDate"))
    fields["study_time"] = _time(ds.get("StudyTime"))
    sop_class = fields["sop_class_uid"]
    fields["sop_class_name"] = UID(sop_class).name if sop_class and UID(sop_class).is_valid else None
    meta = getattr(ds, "file_meta", None)
    fields["transfer_syntax_uid"] = _text(meta, "TransferSyntaxUID") if meta is not None else None
    fields["has_pixel_data"] = "PixelData" in ds
    return fields


def _text(ds: Dataset, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    if not isinstance(value, str) and hasattr(value, "__iter__"):
        value = "\\".join(str(part) for part in value)
    text = str(value).strip().rstrip("\x00")
    return text or None


def _integer(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword)
    try:
        return int(float(text)) if text else None
    except ValueError:
        return None


def _date(value: Any) -> dt.date | None:
    text = str(value or "").strip()
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        parsed = DA(text)
    except ValueError:
        return None
    return dt.date(parsed.year, parsed.month, parsed.day) if parsed else None


def _time(value: Any) -> dt.time | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        parsed = TM(text)
    except ValueError:
        return None
    return dt.time(parsed.hour, parsed.minute, parsed.second, parsed.microsecond) if parsed else None
