"""index_fields reads the filterable header of a de-identified instance."""

from __future__ import annotations

import datetime as dt

from medical.dicom import DeidOptions, deidentify, index_fields
from tests.medical.dicom_files import UID_KEY, read_test_file


def test_index_fields_of_a_deidentified_ct(deidentified_ct):
    fields = index_fields(deidentified_ct.dataset)
    assert fields["patient_pseudonym"] == deidentified_ct.patient_pseudonym
    assert fields["modality"] == "CT"
    assert fields["manufacturer"] == "GE MEDICAL SYSTEMS"
    assert (fields["rows"], fields["columns"], fields["number_of_frames"]) == (128, 128, 1)
    assert fields["series_number"] == 1 and fields["instance_number"] == 1
    assert fields["sop_class_name"] == "CT Image Storage"
    assert fields["study_instance_uid"] == deidentified_ct.dataset.StudyInstanceUID
    assert fields["study_instance_uid"].startswith("2.25.")
    # Removed or emptied by the profile: nothing to filter on, and certainly not the original.
    assert fields["study_date"] is None and fields["study_description"] is None
    assert fields["patient_age"] is None and fields["patient_sex"] is None
    assert fields["accession_number"] is None
    assert fields["has_pixel_data"] is True


def test_index_fields_with_options_and_multi_frame():
    ct = read_test_file("CT_small.dcm")
    kept = index_fields(
        deidentify(ct, uid_key=UID_KEY, options=DeidOptions(retain_longitudinal_dates=True)).dataset
    )
    assert kept["study_date"] == dt.date(2004, 1, 19) and kept["study_time"] == dt.time(7, 27, 30)
    dose = index_fields(deidentify(read_test_file("rtdose.dcm"), uid_key=UID_KEY).dataset)
    assert dose["number_of_frames"] == 15 and dose["modality"] == "RTDOSE"
    plan = index_fields(deidentify(read_test_file("rtplan.dcm"), uid_key=UID_KEY).dataset)
    assert plan["number_of_frames"] is None and plan["has_pixel_data"] is False
    assert plan["sop_class_name"] == "RT Plan Storage"
