"""After ingesting a study and using an API token, neither the patient's name nor the token's key
is anywhere in plain text: not in any file under the per-run var/, not in any database column."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pydicom
import pytest
from django.conf import settings
from django.db import connection

from accounts.roles import Role
from medical.models import Channel, Instance
from medical.services import IngestSource, instance_ingest
from tests.factories import PASSWORD
from tests.medical.dicom_files import file_bytes

pytestmark = pytest.mark.django_db
PATIENT_NAME = "Quokkasson^Zyxwvuta"
PATIENT_ID = "QK-4711-ZZ"


_SCAN = """
import json, pathlib, sys
root, needles = pathlib.Path(sys.argv[1]), [n.encode() for n in json.loads(sys.argv[2])]
hits = []
for path in root.rglob("*"):
    if path.is_file() and not path.is_symlink():
        content = path.read_bytes()
        hits += [f"{path.relative_to(root)}: {n!r}" for n in needles if n in content]
print(json.dumps(hits))
"""


def _file_hits(needles: list[bytes]) -> list[str]:
    """Read in another process: opening and closing the live SQLite database file here would drop
    every POSIX lock this process holds on it (SQLite's documented pitfall), and the next process to
    close its last connection would then delete the -wal and -shm files under this one's connections
    (the "disk I/O error" flake of sessions 14-15)."""
    scan = subprocess.run(
        [sys.executable, "-c", _SCAN, str(settings.VAR_DIR), json.dumps([n.decode() for n in needles])],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(scan.stdout)


def _database_hits(needles: list[str]) -> list[str]:
    hits = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608  (names from introspection)
            for row in cursor.fetchall():
                text = " ".join(
                    value.decode("latin-1") if isinstance(value, (bytes, memoryview)) else str(value)
                    for value in (bytes(v) if isinstance(v, memoryview) else v for v in row)
                )
                hits += [f"{table}: {needle!r}" for needle in needles if needle.lower() in text.lower()]
    return hits


def test_patient_name_and_token_key_are_nowhere_in_plain_text(client, make_user):
    dataset = pydicom.dcmread(io.BytesIO(file_bytes("CT_small.dcm")))
    dataset.PatientName = PATIENT_NAME
    dataset.PatientID = PATIENT_ID
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    source = IngestSource(
        channel=Channel.API,
        department="radiology",
        actor="test:medical",
        received_from="tests",
        previews="skip",
    )
    outcome = instance_ingest(source=source, filename="quokka.dcm", data=buffer.getvalue())
    assert outcome.instance_id, outcome
    study = Instance.objects.get(pk=outcome.instance_id).series.study

    radiologist = make_user(Role.RADIOLOGIST, department="radiology")
    client.force_login(radiologist)
    assert client.get(f"/medical/studies/{study.pk}/").status_code == 200
    issued = client.post("/api/auth/token/", {"username": radiologist.username, "password": PASSWORD})
    key = issued.json()["token"]
    assert client.get("/api/medical/studies/", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200

    # The scans do find what is there: the user's name in the database, DICOM files on disk.
    assert _database_hits([radiologist.username]) and _file_hits([b"DICM"])
    name_forms = [PATIENT_NAME, PATIENT_NAME.replace("^", " "), "Quokkasson", PATIENT_ID]
    assert _database_hits([*name_forms, key]) == []
    assert _file_hits([form.encode() for form in name_forms] + [key.encode()]) == []
