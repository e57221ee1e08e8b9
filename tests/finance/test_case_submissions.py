"""Sent twice, kept once: a case note sent again with its submission key (the page's hidden field, the
API's Idempotency-Key) and a file attached again are kept once; the key with another text is refused."""

from __future__ import annotations

import re
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from audit.models import Event
from finance.models import Attachment, Case, Note
from finance.services import FinanceRefused, SubmissionKeyReused, note_add

pytestmark = pytest.mark.django_db


def _note(client, case, text, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post(
        f"/api/finance/cases/{case.pk}/notes/",
        {"text": text},
        content_type="application/json",
        headers=headers,
    )


def test_the_same_note_key_adds_once_and_another_text_is_422(client, screened, officer):
    case = Case.objects.get()
    client.force_login(officer)
    first = _note(client, case, "Called the branch: cash deposits confirmed.", key="n-1")
    again = _note(client, case, "Called the branch: cash deposits confirmed.", key="n-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    other = _note(client, case, "Something else entirely.", key="n-1")
    assert other.status_code == 422 and "already added note" in other.json()["detail"]
    assert _note(client, case, "A second note.", key="n-2").status_code == 201
    assert _note(client, case, "No key: each send is a note.").status_code == 201
    assert _note(client, case, "bad key", key="a b").status_code == 400
    assert Note.objects.count() == 3
    assert Event.objects.filter(action="case.note").count() == 3


def test_keys_are_each_officers_own(client, screened, officer, officer2):
    case = Case.objects.get()
    client.force_login(officer)
    assert _note(client, case, "Mine.", key="shared").status_code == 201
    client.force_login(officer2)
    assert _note(client, case, "Mine.", key="shared").status_code == 201
    assert Note.objects.count() == 2


def test_the_page_form_sent_twice_adds_once_and_says_so(client, screened, officer):
    case = Case.objects.get()
    client.force_login(officer)
    page = client.get(f"/finance/cases/{case.pk}/").content.decode()
    key = re.search(r'name="submission" value="([0-9a-f]{32})"', page).group(1)
    assert "data-draft" not in page  # bank pages are no-store: nothing typed is kept in the browser
    form = {"action": "note", "text": "Reviewed the counterparties.", "submission": key}
    client.post(f"/finance/cases/{case.pk}/", form)
    again = client.post(f"/finance/cases/{case.pk}/", form, follow=True).content.decode()
    assert "This note was already sent: it was added once." in again
    assert Note.objects.filter(text="Reviewed the counterparties.").count() == 1

    edited = client.post(f"/finance/cases/{case.pk}/", {**form, "text": "Reviewed them twice."})
    body = edited.content.decode()
    assert edited.status_code == 400 and "already added note" in body
    assert "Reviewed them twice." in body  # what was typed stays on the page, with a fresh key
    assert Note.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_key_sent_twice_at_once_adds_once(screened, officer):
    """The unique constraint lets one insert; the other returns that note (PostgreSQL; SQLite runs the
    two transactions one after the other, so there the second finds the first)."""
    case = Case.objects.get()
    results, ready = [], threading.Barrier(2)

    def send():
        try:
            ready.wait()
            results.append(note_add(actor=officer, case=case, text="Same note.", submission_key="race-1"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0].pk == results[1].pk
    assert sorted(note.replayed for note in results) == [False, True]
    assert Note.objects.count() == 1 and Event.objects.filter(action="case.note").count() == 1


def test_the_same_file_attached_again_is_kept_once(client, screened, officer):
    case = Case.objects.get()
    client.force_login(officer)
    url = f"/api/finance/cases/{case.pk}/attachments/"
    first = client.post(url, {"file": SimpleUploadedFile("kyc.txt", b"passport copy checked")})
    again = client.post(url, {"file": SimpleUploadedFile("kyc (1).txt", b"passport copy checked")})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["Idempotent-Replayed"] == "true"
    page = client.post(
        f"/finance/cases/{case.pk}/",
        {"action": "attach", "file": SimpleUploadedFile("scan.txt", b"passport copy checked")},
        follow=True,
    )
    assert "This file is already attached to the case, as kyc.txt." in page.content.decode()
    assert client.post(url, {"file": SimpleUploadedFile("kyc.txt", b"another page")}).status_code == 201
    assert Attachment.objects.count() == 2
    assert Event.objects.filter(action="case.attach").count() == 2


def test_the_service_refuses_a_bad_key(screened, officer):
    with pytest.raises(FinanceRefused, match="1 to 64 letters"):
        note_add(actor=officer, case=Case.objects.get(), text="x", submission_key="a b")
    assert not Note.objects.exists()
    assert issubclass(SubmissionKeyReused, FinanceRefused)
