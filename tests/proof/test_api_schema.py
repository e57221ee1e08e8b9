"""schemathesis over the whole OpenAPI schema: generated requests (valid and invalid) against every
operation, as a user of the role each API is for, must never get a server error, must be refused
when invalid (negative_data_rejection) and every response must conform to the schema (status code,
content type and body). Bounded example counts keep it within CI's time; the DICOM upload,
break-glass and the partner key registration run as their own bounded cases below (multipart
bodies, a real stored instance, generated CKKS contexts)."""

from __future__ import annotations

import pytest
import schemathesis
from django.test import Client
from hypothesis import HealthCheck, event, settings
from schemathesis.checks import ignored_auth, positive_data_acceptance

from suite.wsgi import application
from tests.factories import UserFactory
from tests.proof.fuzzing import RANDOM, SCALE

CSRF = "suiteproofcsrftokenvalue00000000"  # 32 characters: a valid unmasked CSRF secret

# Operations with their own bounded cases (below): the DICOM upload, break-glass and the partner key
# registration (every generated context goes through TenSEAL's parser; a real, 35 MB one is
# registered in tests/finance/test_he_scoring.py).
HE_KEYS = "/api/finance/he/keys/"
HE_SCORE = "/api/finance/he/score/"
ELSEWHERE = rf"(/upload/|/break-glass/|{HE_KEYS})"

ROLE_FOR_PREFIX = (
    (
        "/api/medical/",
        dict(roles=["radiologist"], department="radiology", certifications=["board_certified"]),
    ),
    ("/api/finance/", dict(roles=["compliance_officer"], department="aml-eu")),
    ("/api/manufacturing/", dict(roles=["maintenance_engineer"], site="site-a")),
    ("/api/audit/", dict(roles=["auditor"])),
    ("/api/access/", dict(roles=["auditor"])),
    ("/", dict(roles=["ml_engineer"], department="radiology")),
)


def _generated_schema() -> dict:
    """The schema /api/schema/ serves, generated in-process (that endpoint is for signed-in users)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


# Built at collection: generating the schema needs no database. (schemathesis' from_fixture relies
# on a pytest attribute that pytest 9 removed.)
RAW_SCHEMA = _generated_schema()
everything = schemathesis.openapi.from_dict(RAW_SCHEMA)
everything.app = application
schema = everything.exclude(path_regex=ELSEWHERE)
schema.app = application
restricted = everything.exclude(path="/api/auth/token/")  # the login endpoint itself is open
restricted.app = application
uploads = everything.include(path="/api/medical/studies/upload/")
uploads.app = application
break_glass = everything.include(path_regex=r"/break-glass/$")
break_glass.app = application
he_keys = everything.include(path=HE_KEYS)
he_keys.app = application


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """The WSGI handler closes the database connection after each request; the test's transaction
    lives on it (Django's own test client disconnects the same handlers)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _session_for(path: str) -> dict[str, str]:
    attributes = next(attrs for prefix, attrs in ROLE_FOR_PREFIX if path.startswith(prefix))
    client = Client()
    client.force_login(UserFactory(**attributes))
    return {"sessionid": client.cookies["sessionid"].value, "csrftoken": CSRF}


def bounded(examples: int):
    """Hypothesis settings of every schema run: `examples` x SUITE_FUZZ_SCALE cases, no deadline, derandomized
    unless SUITE_FUZZ_RANDOM is set, no example database."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not RANDOM,
        database=None,  # nothing written into the checkout
    )


@schema.parametrize()
@bounded(3)
@pytest.mark.django_db
def test_no_server_error_and_responses_match_the_schema(case):
    response = case.call(cookies=_session_for(case.operation.path), headers={"X-CSRFToken": CSRF})
    _check(case, response)


@restricted.parametrize()
@bounded(1)
@pytest.mark.django_db
def test_unauthenticated_calls_are_refused(case):
    response = case.call()
    assert response.status_code in (401, 403, 404, 405, 415), (
        f"{case.method} {case.formatted_path}: {response.status_code}"
    )


def _check(case, response) -> None:
    """No 5xx, and the response as the schema documents it. Sessions are the credentials here:
    "accepts invalid authentication" is checked by the unauthenticated test; a schema-valid request
    may rightly meet 404 (ids that do not exist)."""
    event(f"answered {response.status_code}")
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:500]}"
    )
    case.validate_response(response, excluded_checks=[ignored_auth, positive_data_acceptance])


@uploads.parametrize()
@bounded(10)
@pytest.mark.django_db
def test_dicom_upload_answers_a_report_or_a_refusal(case):
    """Generated multipart bodies (any bytes as `files`): a per-file report (each refused file
    quarantined with a reason) or a 400, as documented."""
    response = case.call(cookies=_session_for(case.operation.path), headers={"X-CSRFToken": CSRF})
    _check(case, response)


@pytest.fixture
def stored_instance(db):
    """A real instance of the radiology department, stored through the ingest pipeline."""
    from medical.models import Channel
    from medical.services import IngestSource, instance_ingest
    from tests.medical.dicom_files import file_bytes

    source = IngestSource(
        channel=Channel.API,
        department="radiology",
        actor="test:schema",
        received_from="tests",
        previews="skip",
    )
    outcome = instance_ingest(source=source, filename="CT_small.dcm", data=file_bytes("CT_small.dcm"))
    assert outcome.status == "stored", outcome.reason
    return outcome.instance_id


@break_glass.parametrize()
@bounded(10)
@pytest.mark.django_db
def test_break_glass_answers_the_original_or_a_documented_refusal(case, stored_instance):
    """Generated reasons against a real stored instance (and generated ids): the identified original
    as application/dicom, a 400 for a missing or empty reason, 404 for anything else."""
    if isinstance((case.path_parameters or {}).get("id"), int):
        case.path_parameters["id"] = stored_instance  # a generated number would only ever meet 404
    response = case.call(cookies=_session_for(case.operation.path), headers={"X-CSRFToken": CSRF})
    _check(case, response)


@he_keys.parametrize()
@bounded(10)
@pytest.mark.django_db
def test_partner_key_registration_answers_a_key_id_or_a_refusal(case):
    """Generated multipart bodies (any bytes as `context`) reach TenSEAL's deserializer: a 400 naming
    the field, as documented, and no key file left behind."""
    from finance.he.services import key_dir

    before = set(key_dir().glob("*")) if key_dir().exists() else set()
    response = case.call(cookies=_session_for(case.operation.path), headers={"X-CSRFToken": CSRF})
    _check(case, response)
    after = set(key_dir().glob("*")) if key_dir().exists() else set()
    if response.status_code != 201:
        assert after == before, "a refused context left a file"


@pytest.mark.parametrize(
    "body",
    [{"key_id": "nothex", "ciphertext": "AA=="}, {"key_id": "a" * 64, "ciphertext": "AA=="}],
)
@pytest.mark.django_db
def test_a_refused_encrypted_score_answers_the_documented_error_body(body):
    """Found by a randomized schema run: a refused score came back as {"detail": [message]}, a list
    where every 400 documents a string."""
    case = everything[HE_SCORE]["POST"].Case(body=body, media_type="application/json")
    response = case.call(cookies=_session_for(HE_SCORE), headers={"X-CSRFToken": CSRF})
    assert response.status_code == 400, response.text
    case.validate_response(response, excluded_checks=[ignored_auth, positive_data_acceptance])


def test_multipart_file_fields_are_documented_as_binary():
    """A serializers.FileField is documented as a URI string (drf-spectacular), so clients and this
    run sent a URL instead of bytes; upload inputs use restapi.fields.UploadField."""
    components = RAW_SCHEMA["components"]["schemas"]
    as_uri = []
    for path, operations in RAW_SCHEMA["paths"].items():
        for method, operation in operations.items():
            body = (operation.get("requestBody") or {}).get("content", {}).get("multipart/form-data")
            if not body:
                continue
            schema = body["schema"]
            if "$ref" in schema:
                schema = components[schema["$ref"].rsplit("/", 1)[-1]]
            for name, field in schema.get("properties", {}).items():
                if field.get("format") == "uri" or field.get("items", {}).get("format") == "uri":
                    as_uri.append(f"{method.upper()} {path} {name}")
    assert not as_uri, f"file fields documented as URI strings: {as_uri}"
