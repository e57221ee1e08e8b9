"""Department isolation, sharing and break-glass, through the portal and the API.

The matrix for each restricted endpoint: anonymous, wrong role, right role in another department,
right role in the study's department. A study the caller may not see answers 404 (not 403), so
its existence is not confirmed; every denial of a signed-in user is on the trail, and a denied
request changes nothing.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audit.models import Event
from audit.sealing import open_texts
from medical.models import Instance, Study, StudyQuestion, StudyUserObjectPermission
from tests.medical.dicom_files import file_bytes

ANONYMOUS, WRONG_ROLE, OTHER_DEPARTMENT, SAME_DEPARTMENT = (
    "anonymous",
    "wrong role",
    "other department",
    "same",
)
CALLERS = [ANONYMOUS, WRONG_ROLE, OTHER_DEPARTMENT, SAME_DEPARTMENT]


@pytest.fixture
def ct_study(ingest) -> Study:
    return Study.objects.get(pk=ingest("CT_small.dcm").study_id)


@pytest.fixture
def caller(request, client, make_user):
    kind = request.param
    user = {
        ANONYMOUS: None,
        WRONG_ROLE: lambda: make_user("compliance_officer", department="radiology"),
        OTHER_DEPARTMENT: lambda: make_user("clinician", department="cardiology"),
        SAME_DEPARTMENT: lambda: make_user("clinician", department="radiology"),
    }[kind]
    user = user() if user else None
    if user is not None:
        client.force_login(user)
    return kind, user


def _state(study: Study) -> tuple:
    return (
        StudyQuestion.objects.count(),
        StudyUserObjectPermission.objects.count(),
        Study.objects.count(),
        Instance.objects.count(),
        Study.objects.get(pk=study.pk).burned_in_review,
    )


def _assert_denial_trailed(user, study: Study, action: str) -> None:
    assert Event.objects.filter(
        action=f"study.{action}", outcome="denied", resource_id=str(study.pk), actor_label=user.get_username()
    ).exists(), f"the denial of {action} was not trailed"


API_READS = {
    "detail": lambda study: f"/api/medical/studies/{study.pk}/",
    "questions": lambda study: f"/api/medical/studies/{study.pk}/questions/",
}
PORTAL_READS = {"detail": lambda study: f"/medical/studies/{study.pk}/"}


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
@pytest.mark.parametrize("endpoint", sorted(API_READS))
def test_api_study_reads(caller, endpoint, client, ct_study):
    kind, user = caller
    before = _state(ct_study)
    response = client.get(API_READS[endpoint](ct_study))
    expected = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_DEPARTMENT: 404, SAME_DEPARTMENT: 200}[kind]
    assert response.status_code == expected
    assert _state(ct_study) == before
    if kind in (WRONG_ROLE, OTHER_DEPARTMENT):
        assert response.json() == {"detail": "No such study, or it is not shared with you."}
        _assert_denial_trailed(user, ct_study, "view")


@pytest.mark.django_db
def test_a_missing_study_and_a_hidden_one_look_the_same(client, cardiologist, ct_study):
    client.force_login(cardiologist)
    hidden = client.get(f"/api/medical/studies/{ct_study.pk}/")
    missing = client.get(f"/api/medical/studies/{ct_study.pk + 1000}/")
    assert (hidden.status_code, hidden.json()) == (missing.status_code, missing.json())


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_api_ask(caller, client, ct_study):
    kind, user = caller
    before = _state(ct_study)
    response = client.post(
        f"/api/medical/studies/{ct_study.pk}/ask/",
        {"question": "What is the slice thickness?"},
        "application/json",
    )
    expected = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_DEPARTMENT: 404, SAME_DEPARTMENT: 200}[kind]
    assert response.status_code == expected
    if kind == SAME_DEPARTMENT:
        assert "5 mm" in response.json()["answer"]
        return
    assert _state(ct_study) == before
    if user is not None:
        _assert_denial_trailed(user, ct_study, "view")


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_api_list(caller, client, ct_study):
    kind, user = caller
    response = client.get("/api/medical/studies/")
    expected = {ANONYMOUS: 401, WRONG_ROLE: 403, OTHER_DEPARTMENT: 200, SAME_DEPARTMENT: 200}[kind]
    assert response.status_code == expected
    if kind == WRONG_ROLE:
        assert Event.objects.filter(
            action="portal.view", outcome="denied", actor_label=user.get_username()
        ).exists()
    if expected == 200:
        listed = [study["id"] for study in response.json()["results"]]
        assert listed == ([ct_study.pk] if kind == SAME_DEPARTMENT else [])


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_api_upload(caller, client, ct_study):
    kind, user = caller
    before = _state(ct_study)
    upload = SimpleUploadedFile("MR_small.dcm", file_bytes("MR_small.dcm"))
    response = client.post("/api/medical/studies/upload/", {"files": [upload]})
    # Clinicians upload for their own department; the study lands there, whatever the caller says.
    expected = {ANONYMOUS: 401, WRONG_ROLE: 403, OTHER_DEPARTMENT: 200, SAME_DEPARTMENT: 200}[kind]
    assert response.status_code == expected
    if expected != 200:
        assert _state(ct_study) == before
    else:
        assert response.json()["counts"]["stored"] == 1
        new = Study.objects.exclude(pk=ct_study.pk).get()
        assert new.department == user.department
        event = Event.objects.get(
            action="study.ingest",
            outcome="succeeded",
            actor_label=user.get_username(),
            resource_id=str(new.pk),
        )
        assert event.policy == "clinician_department_studies"  # the rule that allowed the upload
    if kind == WRONG_ROLE:
        assert Event.objects.filter(
            action="study.upload", outcome="denied", actor_label=user.get_username()
        ).exists()


@pytest.mark.django_db
def test_a_radiologist_uploads_for_their_department(client, radiologist):
    client.force_login(radiologist)
    upload = SimpleUploadedFile("MR_small.dcm", file_bytes("MR_small.dcm"))
    response = client.post("/api/medical/studies/upload/", {"files": [upload]})
    assert response.status_code == 200 and response.json()["counts"]["stored"] == 1
    assert Study.objects.get().department == "radiology"


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
@pytest.mark.parametrize("endpoint", sorted(PORTAL_READS))
def test_portal_study_pages(caller, endpoint, client, ct_study):
    kind, user = caller
    before = _state(ct_study)
    response = client.get(PORTAL_READS[endpoint](ct_study))
    expected = {ANONYMOUS: 302, WRONG_ROLE: 404, OTHER_DEPARTMENT: 404, SAME_DEPARTMENT: 200}[kind]
    assert response.status_code == expected
    assert _state(ct_study) == before
    if kind == ANONYMOUS:
        assert "/login" in response["Location"]
    elif kind != SAME_DEPARTMENT:
        _assert_denial_trailed(user, ct_study, "view")
    else:
        assert b'data-testid="chat-form"' in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_portal_study_list(caller, client, ct_study):
    kind, _ = caller
    response = client.get("/medical/")
    expected = {ANONYMOUS: 302, WRONG_ROLE: 403, OTHER_DEPARTMENT: 200, SAME_DEPARTMENT: 200}[kind]
    assert response.status_code == expected
    if expected == 200:
        shown = f'data-study="{ct_study.pk}"'.encode() in response.content
        assert shown == (kind == SAME_DEPARTMENT)


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_api_share(caller, client, ct_study, make_user):
    kind, user = caller
    colleague = make_user("clinician", department="cardiology")
    before = _state(ct_study)
    response = client.post(
        f"/api/medical/studies/{ct_study.pk}/share/", {"username": colleague.username}, "application/json"
    )
    # Clinicians of the department see the study but may not share it (radiologists do).
    expected = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_DEPARTMENT: 404, SAME_DEPARTMENT: 403}[kind]
    assert response.status_code == expected
    assert _state(ct_study) == before
    if kind == SAME_DEPARTMENT:
        _assert_denial_trailed(user, ct_study, "share")


@pytest.mark.django_db
def test_a_radiologist_shares_with_a_named_colleague_of_another_department(
    client, radiologist, cardiologist, ct_study
):
    client.force_login(cardiologist)
    assert client.get(f"/api/medical/studies/{ct_study.pk}/").status_code == 404
    client.force_login(radiologist)
    response = client.post(
        f"/api/medical/studies/{ct_study.pk}/share/", {"username": cardiologist.username}, "application/json"
    )
    assert response.status_code == 200
    assert sorted(response.json()["grants"]) == [
        f"user:{cardiologist.username} ask_study",
        f"user:{cardiologist.username} view_study",
    ]
    grants = Event.objects.filter(
        action="study.grant", resource_id=str(ct_study.pk), actor_label=radiologist.username
    )
    assert sorted(event.payload["action"] for event in grants) == ["ask", "view"]
    client.force_login(cardiologist)
    assert client.get(f"/api/medical/studies/{ct_study.pk}/").status_code == 200
    listed = client.get("/api/medical/studies/").json()["results"]
    assert [study["id"] for study in listed] == [ct_study.pk]
    asked = client.post(
        f"/api/medical/studies/{ct_study.pk}/ask/", {"question": "What modality is this?"}, "application/json"
    )
    assert asked.status_code == 200 and "CT" in asked.json()["answer"]


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_api_unshare(caller, client, ct_study, radiologist, make_user):
    kind, user = caller
    colleague = make_user("clinician", department="cardiology")
    client.force_login(radiologist)
    share = f"/api/medical/studies/{ct_study.pk}/share/"
    assert client.post(share, {"username": colleague.username}, "application/json").status_code == 200
    client.logout()
    if user is not None:
        client.force_login(user)
    before = _state(ct_study)
    response = client.delete(f"{share}{colleague.username}/")
    # Clinicians of the department see the study but may not take a share back (radiologists do).
    expected = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_DEPARTMENT: 404, SAME_DEPARTMENT: 403}[kind]
    assert response.status_code == expected
    assert _state(ct_study) == before
    if kind == SAME_DEPARTMENT:
        _assert_denial_trailed(user, ct_study, "unshare")


@pytest.mark.django_db
def test_unsharing_takes_the_grants_back_and_is_trailed(
    client, radiologist, cardiologist, clinician, ct_study
):
    client.force_login(radiologist)
    share_url = f"/api/medical/studies/{ct_study.pk}/share/"
    assert client.post(share_url, {"username": cardiologist.username}, "application/json").status_code == 200
    client.force_login(cardiologist)
    assert client.get(f"/api/medical/studies/{ct_study.pk}/").status_code == 200

    unshare_url = f"{share_url}{cardiologist.username}/"
    client.force_login(clinician)  # sees the study, but un-sharing is the radiologists' call
    assert client.delete(unshare_url).status_code == 403
    _assert_denial_trailed(clinician, ct_study, "unshare")
    assert StudyUserObjectPermission.objects.filter(user=cardiologist).count() == 2

    client.force_login(radiologist)
    assert client.delete(unshare_url).status_code == 204
    assert not StudyUserObjectPermission.objects.filter(user=cardiologist).exists()
    revokes = Event.objects.filter(
        action="study.revoke", resource_id=str(ct_study.pk), actor_label=radiologist.username
    )
    assert sorted((event.payload["action"], event.payload["was_granted"]) for event in revokes) == [
        ("ask", True),
        ("view", True),
    ]
    again = client.delete(unshare_url)
    assert again.status_code == 400 and "not shared with" in again.json()["detail"]

    client.force_login(cardiologist)
    assert client.get(f"/api/medical/studies/{ct_study.pk}/").status_code == 404
    assert client.get("/api/medical/studies/").json()["results"] == []


@pytest.mark.django_db
def test_the_study_page_lists_shares_and_stops_one(client, radiologist, cardiologist, ct_study):
    client.force_login(radiologist)
    client.post(f"/medical/studies/{ct_study.pk}/share/", {"username": cardiologist.username})
    page = client.get(f"/medical/studies/{ct_study.pk}/")
    assert f"Stop sharing with {cardiologist.username}".encode() in page.content
    response = client.post(f"/medical/studies/{ct_study.pk}/unshare/", {"username": cardiologist.username})
    assert response.status_code == 302
    assert not StudyUserObjectPermission.objects.filter(user=cardiologist).exists()
    page = client.get(response["Location"])
    assert f"no longer shared with {cardiologist.username}".encode() in page.content
    assert b"Not shared outside radiology" in page.content


@pytest.mark.django_db
def test_sharing_with_someone_who_holds_no_clinical_role_is_refused(client, radiologist, make_user, ct_study):
    auditor = make_user("auditor")
    client.force_login(radiologist)
    response = client.post(
        f"/api/medical/studies/{ct_study.pk}/share/", {"username": auditor.username}, "application/json"
    )
    assert response.status_code == 400 and "not a clinician or radiologist" in response.json()["detail"]
    assert not StudyUserObjectPermission.objects.exists()


@pytest.mark.django_db
def test_break_glass_returns_the_original_byte_for_byte_and_is_trailed(
    client, certified_radiologist, ct_study
):
    radiologist = certified_radiologist
    instance = Instance.objects.get(series__study=ct_study)
    client.force_login(radiologist)
    reason = "Identity check before emergency surgery, ward 3"
    response = client.post(
        f"/api/medical/instances/{instance.pk}/break-glass/", {"reason": reason}, "application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    assert response.content == file_bytes("CT_small.dcm")
    read = Event.objects.get(action="study.break_glass", outcome="succeeded", resource_id=str(ct_study.pk))
    assert read.actor_label == radiologist.username
    assert read.payload["instance_id"] == instance.pk and reason not in read.payload_json
    assert open_texts(read) == {"reason": reason}  # sealed in the payload, its digest hashed
    decision = Event.objects.get(action="study.break_glass", outcome="allowed", resource_id=str(ct_study.pk))
    assert decision.policy == "break_glass"


@pytest.mark.django_db
def test_break_glass_needs_a_reason(client, certified_radiologist, ct_study):
    instance = Instance.objects.get(series__study=ct_study)
    client.force_login(certified_radiologist)
    response = client.post(
        f"/api/medical/instances/{instance.pk}/break-glass/", {"reason": "need"}, "application/json"
    )
    assert response.status_code == 400
    assert not Event.objects.filter(action="study.break_glass").exists()


@pytest.mark.django_db
def test_break_glass_reaches_across_departments_for_a_certified_radiologist(client, make_user, ct_study):
    elsewhere = make_user("radiologist", department="cardiology", certifications=["board_certified"])
    instance = Instance.objects.get(series__study=ct_study)
    client.force_login(elsewhere)
    assert client.get(f"/api/medical/studies/{ct_study.pk}/").status_code == 404
    reason = "Patient transferred to cardiology ICU, identity unclear"
    response = client.post(
        f"/api/medical/instances/{instance.pk}/break-glass/", {"reason": reason}, "application/json"
    )
    assert response.status_code == 200 and response.content == file_bytes("CT_small.dcm")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("roles", "attributes", "rule"),
    [
        (
            ("admin", "radiologist"),
            {"certifications": ["board_certified"]},
            "administrators_never_see_patient_data",
        ),
        (("radiologist",), {}, ""),  # not board-certified
        (("clinician",), {}, ""),
    ],
    ids=["admin", "uncertified radiologist", "clinician"],
)
def test_break_glass_refused_by_the_policy_is_a_trailed_404(
    client, make_user, ct_study, roles, attributes, rule
):
    user = make_user(*roles, department="radiology", **attributes)
    instance = Instance.objects.get(series__study=ct_study)
    client.force_login(user)
    reason = "Trying to read the original without the right to"
    response = client.post(
        f"/api/medical/instances/{instance.pk}/break-glass/", {"reason": reason}, "application/json"
    )
    assert response.status_code == 404
    denied = Event.objects.get(action="study.break_glass", resource_id=str(ct_study.pk))
    assert (denied.outcome, denied.policy, denied.actor_label) == ("denied", rule, user.username)


@pytest.mark.django_db
def test_portal_break_glass_downloads_the_original(client, certified_radiologist, ct_study):
    instance = Instance.objects.get(series__study=ct_study)
    client.force_login(certified_radiologist)
    response = client.post(
        f"/medical/studies/{ct_study.pk}/break-glass/",
        {"instance": instance.pk, "reason": "Confirming identity with the referring ward"},
    )
    assert response.status_code == 200 and response.content == file_bytes("CT_small.dcm")
    assert Event.objects.filter(action="study.break_glass", outcome="succeeded").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("caller", CALLERS, indirect=True)
def test_api_burned_in_review(caller, client, ingest):
    kind, user = caller
    study = Study.objects.get(pk=ingest("examples_ybr_color.dcm").study_id)
    before = _state(study)
    response = client.post(
        f"/api/medical/studies/{study.pk}/burned-in-review/", {"decision": "cleared"}, "application/json"
    )
    # Clinicians see the flagged study; the review is the radiologists' (action `review`).
    expected = {ANONYMOUS: 401, WRONG_ROLE: 404, OTHER_DEPARTMENT: 404, SAME_DEPARTMENT: 403}[kind]
    assert response.status_code == expected
    assert _state(study) == before
    if kind == SAME_DEPARTMENT:
        _assert_denial_trailed(user, study, "review")


@pytest.mark.django_db
def test_burned_in_review_by_a_radiologist_of_the_department(client, radiologist, clinician, ingest):
    study = Study.objects.get(pk=ingest("examples_ybr_color.dcm").study_id)
    client.force_login(clinician)
    url = f"/api/medical/studies/{study.pk}/burned-in-review/"
    assert client.post(url, {"decision": "cleared"}, "application/json").status_code == 403
    assert Study.objects.get(pk=study.pk).burned_in_review == "pending"
    _assert_denial_trailed(clinician, study, "review")
    client.force_login(radiologist)
    response = client.post(url, {"decision": "cleared"}, "application/json")
    assert response.status_code == 200 and response.json()["burned_in_review"] == "cleared"
    event = Event.objects.get(action="study.burned_in_review", outcome="succeeded")
    assert event.payload == {"decision": "cleared", "previous": "pending"}


@pytest.mark.django_db
def test_the_study_list_filters_by_modality_and_description_and_counts_every_series(
    client, clinician, ingest
):
    ct = ingest("CT_small.dcm").study_id
    mr = ingest("MR_small.dcm").study_id
    ingest("dicomdirtests/77654033/CT2/17106")
    client.force_login(clinician)
    listed = client.get("/api/medical/studies/", {"modality": "mr"}).json()["results"]
    assert [(study["id"], study["series_count"], study["instance_count"]) for study in listed] == [(mr, 1, 1)]
    assert len(client.get("/api/medical/studies/").json()["results"]) == 3
    page = client.get("/medical/", {"modality": "CT"})
    assert f'data-study="{ct}"'.encode() in page.content and f'data-study="{mr}"'.encode() not in page.content
    assert client.get("/api/medical/studies/", {"date_from": "not a date"}).status_code == 400
