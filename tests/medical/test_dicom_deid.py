"""De-identification against the PS3.15 Basic Profile, on the real files in the pydicom wheel."""

from __future__ import annotations

import io
import re
from collections import defaultdict

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from medical.dicom import (
    DeidOptions,
    DicomRejected,
    burned_in_status,
    deidentify,
    load_basic_profile,
    pseudonymize_uid,
    read_dicom,
)
from medical.dicom.deid import IMPLEMENTATION_CLASS_UID
from tests.medical.dicom_files import UID_KEY, all_test_files, file_bytes, read_test_file


def _accepted_files() -> list[str]:
    accepted = []
    for relative in all_test_files():
        try:
            read_dicom(file_bytes(relative), filename=relative)
        except DicomRejected:
            continue
        accepted.append(relative)
    return accepted


ACCEPTED = _accepted_files()


def _values_by_tag(dataset: Dataset) -> dict[int, list]:
    """Every (tag -> values) anywhere in the data set, sequence items included."""
    found: dict[int, list] = defaultdict(list)
    for elem in dataset.iterall():
        found[int(elem.tag)].append(elem.value)
    return found


def _strings(values: list) -> set[str]:
    flat = set()
    for value in values:
        if isinstance(value, Sequence):
            continue  # a sequence's contents are compared tag by tag
        items = value if isinstance(value, list | pydicom.multival.MultiValue) else [value]
        flat.update(str(item).strip() for item in items if item not in (None, "", b""))
    return flat


def _serialized(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_the_accepted_set_is_large_and_mixed():
    assert len(ACCEPTED) > 100
    modalities = {str(read_test_file(relative).get("Modality", "")) for relative in ACCEPTED}
    assert {"CT", "MR", "US", "CR", "RTDOSE", "RTPLAN", "SR", "SEG"} <= modalities


@pytest.mark.parametrize("relative", ACCEPTED)
def test_nothing_the_profile_removes_or_replaces_survives(relative):
    original = read_test_file(relative)
    result = deidentify(original, uid_key=UID_KEY)
    profile, options = load_basic_profile(), DeidOptions()
    before, after = _values_by_tag(original), _values_by_tag(result.dataset)
    for tag, values in before.items():
        rule = profile.rule_for(tag)
        action = rule.action(options) if rule else None
        if pydicom.tag.Tag(tag).is_private or action == "X":
            assert tag not in after, f"{rule.keyword if rule else hex(tag)} survived"
        elif action in ("Z", "D", "U") and tag not in (0x00100010, 0x00100020):
            leaked = _strings(values) & _strings(after.get(tag, []))
            assert not leaked, f"{rule.keyword} kept an original value"
    assert not any(pydicom.tag.Tag(tag).is_private for tag in after)
    assert not any(0x6000 <= tag >> 16 <= 0x601E or tag >> 16 & 0xFF00 == 0x5000 for tag in after)
    # No identifying text of the original survives anywhere in the written file, pixel data included.
    written = _serialized(result.dataset)
    # Text that legitimately stays (Manufacturer "TOSHIBA_MEC" contains InstitutionName "TOSHIBA").
    kept_text = " ".join(
        str(elem.value)
        for elem in result.dataset.iterall()
        if elem.VR != "SQ" and profile.rule_for(elem.tag) is None
    )
    for keyword in (
        "PatientName",
        "PatientID",
        "InstitutionName",
        "OperatorsName",
        "StationName",
        "AccessionNumber",
    ):
        for value in _strings([elem.value for elem in original.iterall() if elem.keyword == keyword]):
            if len(value) >= 5 and value not in kept_text:
                assert value.encode() not in written, f"{keyword} leaked into the file"
    reread = pydicom.dcmread(io.BytesIO(written))
    assert reread.PatientIdentityRemoved == "YES"


@pytest.mark.parametrize("relative", ACCEPTED)
def test_file_meta_describes_the_deidentified_instance(relative):
    original = read_test_file(relative)
    dataset = deidentify(original, uid_key=UID_KEY).dataset
    meta = dataset.file_meta
    assert meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert dataset.SOPInstanceUID == pseudonymize_uid(original.SOPInstanceUID, uid_key=UID_KEY)
    assert meta.MediaStorageSOPInstanceUID != original.file_meta.MediaStorageSOPInstanceUID
    assert meta.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert "SourceApplicationEntityTitle" not in meta


def test_identity_is_stamped_with_the_profile_code(deidentified_ct):
    dataset = deidentified_ct.dataset
    assert re.fullmatch(r"ANON-[0-9A-F]{10}", deidentified_ct.patient_pseudonym)
    assert str(dataset.PatientName) == dataset.PatientID == deidentified_ct.patient_pseudonym
    assert dataset.PatientIdentityRemoved == "YES"
    codes = [
        (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning)
        for item in dataset.DeidentificationMethodCodeSequence
    ]
    assert codes == [("113100", "DCM", "Basic Application Confidentiality Profile")]
    assert dataset.LongitudinalTemporalInformationModified == "REMOVED"


def test_options_add_their_codes_and_keep_what_they_promise(ct_small):
    options = DeidOptions(retain_longitudinal_dates=True, retain_patient_characteristics=True)
    result = deidentify(ct_small, uid_key=UID_KEY, options=options)
    dataset = result.dataset
    assert dataset.StudyDate == ct_small.StudyDate and dataset.SeriesTime == ct_small.SeriesTime
    assert dataset.PatientSex == ct_small.PatientSex and dataset.PatientAge == ct_small.PatientAge
    assert [item.CodeValue for item in dataset.DeidentificationMethodCodeSequence] == [
        "113100",
        "113106",
        "113108",
    ]
    assert dataset.LongitudinalTemporalInformationModified == "UNMODIFIED"
    assert "InstitutionName" not in dataset  # an option keeps only its own column


def test_option_defaults_come_from_the_data_file():
    import yaml

    from medical.dicom.profile import OPTIONS_YAML

    defaults = yaml.safe_load(OPTIONS_YAML.read_text())["defaults"]
    options = DeidOptions()
    assert {name: getattr(options, name) for name in defaults} == defaults


def test_input_data_set_is_left_untouched(ct_small):
    before = _serialized(ct_small)
    deidentify(ct_small, uid_key=UID_KEY)
    assert _serialized(ct_small) == before


def test_uid_mapping_is_stable_per_key_and_differs_across_keys():
    first, second = (read_test_file(f"dicomdirtests/77654033/CT2/{name}") for name in ("17106", "17136"))
    run_a = [deidentify(dataset, uid_key=b"key-a").dataset for dataset in (first, second)]
    run_b = deidentify(first, uid_key=b"key-a").dataset
    other_key = deidentify(first, uid_key=b"key-b").dataset
    assert run_a[0].SOPInstanceUID == run_b.SOPInstanceUID
    assert run_a[0].StudyInstanceUID == run_a[1].StudyInstanceUID  # one study stays one study
    assert run_a[0].SeriesInstanceUID == run_a[1].SeriesInstanceUID
    assert run_a[0].SOPInstanceUID != run_a[1].SOPInstanceUID
    assert run_a[0].FrameOfReferenceUID == run_a[1].FrameOfReferenceUID
    assert other_key.StudyInstanceUID != run_a[0].StudyInstanceUID
    assert other_key.PatientID != run_a[0].PatientID
    for uid in (run_a[0].SOPInstanceUID, run_a[0].StudyInstanceUID, other_key.SeriesInstanceUID):
        assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", uid) and len(uid) <= 64


def test_one_patient_keeps_one_pseudonym_across_studies():
    computed_radiography = read_test_file("dicomdirtests/77654033/CR1/6154")
    computed_tomography = read_test_file("dicomdirtests/77654033/CT2/17106")
    other_patient = read_test_file("dicomdirtests/98892001/CT5N/2062")
    assert computed_radiography.PatientID == computed_tomography.PatientID
    assert computed_radiography.StudyInstanceUID != computed_tomography.StudyInstanceUID
    pseudonyms = [
        deidentify(ds, uid_key=UID_KEY).patient_pseudonym
        for ds in (computed_radiography, computed_tomography, other_patient)
    ]
    assert pseudonyms[0] == pseudonyms[1] != pseudonyms[2]


def test_actions_report_tags_but_never_original_values(ct_small):
    result = deidentify(ct_small, uid_key=UID_KEY)
    recorded = {(action.keyword, action.action) for action in result.actions}
    assert {
        ("PatientName", "D"),
        ("StudyDate", "Z"),
        ("InstitutionName", "X"),
        ("SOPInstanceUID", "U"),
    } <= recorded
    assert ("", "X") in {
        (action.keyword, action.action) for action in result.actions if action.rule == "private"
    }
    originals = {
        str(ct_small.PatientName),
        ct_small.PatientID,
        ct_small.InstitutionName,
        ct_small.SOPInstanceUID,
    }
    for action in result.actions:
        assert not originals & {action.tag, action.keyword, action.action, action.rule, action.path}


# ------------------------------------------------------------------------- one test per action code


def _small_dataset() -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = pydicom.uid.CTImageStorage
    dataset.SOPInstanceUID = "1.2.3.4.5.6"
    dataset.StudyInstanceUID = "1.2.3.4"
    dataset.SeriesInstanceUID = "1.2.3.4.5"
    dataset.PatientName = "Smith^John"
    dataset.PatientID = "MRN1234567"
    dataset.Modality = "CT"
    return dataset


def _action(result, keyword: str) -> str:
    return next(action.action for action in result.actions if action.keyword == keyword)


def test_action_d_replaces_with_a_dummy_of_the_same_vr():
    dataset = _small_dataset()
    dataset.VerifyingObserverName = "Jones^Ann"  # (0040,A075) D
    dataset.add_new(0x0040A121, "DA", "20240105")  # Date, D
    result = deidentify(dataset, uid_key=UID_KEY)
    assert str(result.dataset.VerifyingObserverName) == "ANONYMIZED"
    assert result.dataset[0x0040A121].value == "19000101"
    assert _action(result, "VerifyingObserverName") == "D"


def test_action_z_empties_the_value():
    dataset = _small_dataset()
    dataset.ReferringPhysicianName = "Who^Doctor"  # Z
    dataset.AccessionNumber = "A998877"  # Z
    result = deidentify(dataset, uid_key=UID_KEY)
    assert "ReferringPhysicianName" in result.dataset and result.dataset["ReferringPhysicianName"].is_empty
    assert result.dataset["AccessionNumber"].is_empty
    assert _action(result, "AccessionNumber") == "Z"


def test_action_x_removes_even_inside_sequences():
    dataset = _small_dataset()
    dataset.PatientAddress = "1 Main Street"  # X
    item = Dataset()
    item.InstitutionName = "General Hospital"  # X/Z/D -> X
    item.CodeValue = "P1"
    dataset.PerformedProtocolCodeSequence = Sequence([item])  # not in the table: walked, not removed
    result = deidentify(dataset, uid_key=UID_KEY)
    assert "PatientAddress" not in result.dataset
    kept_item = result.dataset.PerformedProtocolCodeSequence[0]
    assert "InstitutionName" not in kept_item and kept_item.CodeValue == "P1"
    assert any(
        a.keyword == "InstitutionName" and a.path.startswith("(0040,0260)[0].") for a in result.actions
    )


def test_action_k_keeps_under_an_option_and_still_walks_kept_sequences():
    dataset = _small_dataset()
    dataset.StudyDate = "20240105"
    reference = Dataset()
    reference.ReferencedSOPClassUID = pydicom.uid.CTImageStorage
    reference.ReferencedSOPInstanceUID = "1.2.3.4.5.7"
    reference.PatientName = "Smith^John"  # Patient Name is replaced by the pseudonym wherever it appears
    dataset.ReferencedImageSequence = Sequence([reference])
    result = deidentify(
        dataset, uid_key=UID_KEY, options=DeidOptions(retain_longitudinal_dates=True, retain_uids=True)
    )
    assert result.dataset.StudyDate == "20240105" and _action(result, "StudyDate") == "K"
    kept = result.dataset.ReferencedImageSequence[0]
    assert kept.ReferencedSOPInstanceUID == "1.2.3.4.5.7" and result.dataset.SOPInstanceUID == "1.2.3.4.5.6"
    assert str(kept.PatientName) == result.patient_pseudonym


def test_action_c_cleans_descriptions_of_the_instance_identifiers():
    dataset = _small_dataset()
    dataset.StudyDescription = "CT chest Smith John 2024-01-05 ref MRN1234567 call 555-123-4567"
    result = deidentify(dataset, uid_key=UID_KEY, options=DeidOptions(keep_descriptors=True))
    cleaned = result.dataset.StudyDescription
    assert cleaned.startswith("CT chest") and _action(result, "StudyDescription") == "C"
    for identifying in ("Smith", "John", "2024", "MRN1234567", "4567"):
        assert identifying not in cleaned
    assert "StudyDescription" not in deidentify(dataset, uid_key=UID_KEY).dataset  # default: X


def test_action_u_maps_every_uid_consistently():
    dataset = _small_dataset()
    dataset.FrameOfReferenceUID = "1.2.3.9"
    dataset.FailedSOPInstanceUIDList = ["1.2.3.4.5.6", "1.2.3.4.5.8"]
    result = deidentify(dataset, uid_key=UID_KEY)
    mapped = result.dataset
    assert mapped.SOPInstanceUID == pseudonymize_uid("1.2.3.4.5.6", uid_key=UID_KEY)
    assert mapped.FrameOfReferenceUID == pseudonymize_uid("1.2.3.9", uid_key=UID_KEY)
    assert list(mapped.FailedSOPInstanceUIDList) == [
        mapped.SOPInstanceUID,
        pseudonymize_uid("1.2.3.4.5.8", uid_key=UID_KEY),
    ]
    assert mapped.SOPClassUID == pydicom.uid.CTImageStorage  # class UIDs are not instance identity
    assert _action(result, "FrameOfReferenceUID") == "U"


def test_private_curve_and_overlay_data_are_removed():
    dataset = read_test_file("examples_overlay.dcm")
    dataset.add_new(0x50003000, "OW", b"\x00\x01" * 8)  # a retired curve
    block = dataset.private_block(0x0011, "ACME SITE", create=True)
    block.add_new(0x01, "LO", "Smith^John")
    assert any(elem.tag.group == 0x6000 for elem in dataset)
    cleaned = deidentify(dataset, uid_key=UID_KEY).dataset
    assert not any(elem.tag.is_private or elem.tag.group in (0x5000, 0x6000) for elem in cleaned.iterall())


def test_unlisted_person_names_are_scrubbed_unless_switched_off():
    dataset = _small_dataset()
    dataset.add_new(0x00700084, "PN", "Creator^Content")  # Content Creator's Name: listed, Z/D -> Z
    item = Dataset()
    item.add_new(0x0040A123, "PN", "Observer^Person")  # Person Name: listed, D
    dataset.ContentSequence = Sequence([item])
    dataset.add_new(0x00321032, "PN", "Requester^Doc")  # Requesting Physician: listed, X
    dataset.add_new(0x00404037, "PN", "Performer^Human")  # listed, X
    dataset.add_new(0x0018A001, "SQ", Sequence())  # Contributing Equipment Sequence, unlisted
    contributor = Dataset()
    contributor.add_new(0x00401010, "PN", "Recipient^Name")  # listed X inside an unlisted sequence
    dataset[0x0018A001].value.append(contributor)
    result = deidentify(dataset, uid_key=UID_KEY)
    assert "Creator" not in str(result.dataset.get(0x00700084).value or "")
    written = _serialized_plain(result.dataset)
    for name in ("Observer", "Requester", "Performer", "Recipient"):
        assert name.encode() not in written


def _serialized_plain(dataset: Dataset) -> bytes:
    dataset.file_meta = pydicom.dataset.FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    return _serialized(dataset)


# ------------------------------------------------------------------------------------- burned-in text


def test_burned_in_flags():
    ultrasound = read_test_file("examples_ybr_color.dcm")
    computed_tomography = read_test_file("CT_small.dcm")
    secondary_capture_nm = read_test_file("JPEG2000.dcm")
    assert "BurnedInAnnotation" not in ultrasound
    assert deidentify(ultrasound, uid_key=UID_KEY).burned_in == "unknown"
    assert deidentify(computed_tomography, uid_key=UID_KEY).burned_in == "no"
    assert (
        secondary_capture_nm.Modality == "NM"
        and secondary_capture_nm.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    )
    assert burned_in_status(secondary_capture_nm) == "unknown"
    computed_tomography.BurnedInAnnotation = "YES"
    assert deidentify(computed_tomography, uid_key=UID_KEY).burned_in == "yes"
    ultrasound.BurnedInAnnotation = "NO"
    assert burned_in_status(ultrasound) == "no"


# ------------------------------------------------------------------------------------------ the table


def test_profile_table_holds_the_standard_rows():
    profile = load_basic_profile()
    assert len(profile.rules) + len(profile.masked_rules) >= 600
    expected = {
        "PatientName": ("Z", "Z"),
        "PatientBirthDate": ("Z", "Z"),
        "PatientID": ("Z/D", "D"),
        "PatientAge": ("X", "X"),
        "AccessionNumber": ("Z", "Z"),
        "InstitutionName": ("X/Z/D", "X"),
        "StudyInstanceUID": ("U", "U"),
        "AcquisitionDateTime": ("X/Z/D", "D"),
        "ReferencedImageSequence": ("X/Z/U*", "X"),
        "ContentSequence": ("D", "D"),
    }
    by_keyword = {rule.keyword: rule for rule in profile.rules.values()}
    assert {
        keyword: (by_keyword[keyword].basic, by_keyword[keyword].applied) for keyword in expected
    } == expected
    assert {rule.basic for rule in profile.rules.values()} >= {
        "D",
        "Z",
        "X",
        "U",
        "X/Z",
        "X/D",
        "X/Z/D",
        "Z/D",
        "X/Z/U*",
    }
    assert profile.action_for(0x60043000, DeidOptions()) == "X"  # overlay data in any overlay group
    assert profile.action_for(0x50100200, DeidOptions()) == "X"  # curve groups
    assert profile.action_for(0x00080020, DeidOptions(retain_longitudinal_dates=True)) == "K"
    assert profile.action_for(0x00081030, DeidOptions(keep_descriptors=True)) == "C"
