"""DICOM building blocks for the medical app: plain Python over pydicom, no Django models.

Ingest order: `read_dicom` (or `iter_zip_members` then `read_dicom`) -> `deidentify` -> `index_fields`
and `render_preview` on the de-identified data set. Question answering: `removed_phi_requested` first,
then `retrieve` for the attributes that ground the answer. Import from here; the submodules are
implementation detail.
"""

from medical.dicom.deid import (
    AppliedAction,
    DeidResult,
    burned_in_status,
    deidentify,
    patient_pseudonym,
    pseudonymize_uid,
)
from medical.dicom.grounding import GroundingAttribute, removed_phi_requested, retrieve
from medical.dicom.header import index_fields
from medical.dicom.preview import render_preview
from medical.dicom.profile import DeidOptions, DeidProfile, ProfileRule, load_basic_profile
from medical.dicom.validation import (
    PREAMBLE_NOTE,
    ArchiveRejected,
    DicomRejected,
    UploadRejected,
    iter_zip_members,
    lacks_preamble,
    read_dicom,
)
from medical.dicom.values import format_value

__all__ = [
    "PREAMBLE_NOTE",
    "AppliedAction",
    "ArchiveRejected",
    "DeidOptions",
    "DeidProfile",
    "DeidResult",
    "DicomRejected",
    "GroundingAttribute",
    "ProfileRule",
    "UploadRejected",
    "burned_in_status",
    "deidentify",
    "format_value",
    "index_fields",
    "iter_zip_members",
    "lacks_preamble",
    "load_basic_profile",
    "patient_pseudonym",
    "pseudonymize_uid",
    "read_dicom",
    "removed_phi_requested",
    "render_preview",
    "retrieve",
]
