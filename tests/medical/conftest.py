"""Fixtures for the DICOM tests (helpers live in tests/medical/dicom_files.py)."""

from __future__ import annotations

import pydicom
import pytest

from medical.dicom import deidentify
from tests.medical.dicom_files import UID_KEY, file_bytes, read_test_file


@pytest.fixture
def uid_key() -> bytes:
    return UID_KEY


@pytest.fixture
def ct_small() -> pydicom.Dataset:
    return read_test_file("CT_small.dcm")


@pytest.fixture
def deidentified_ct(ct_small):
    return deidentify(ct_small, uid_key=UID_KEY)


# --- the medical app: users, studies, a tiny QA model, the DICOM node ------------------------------


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """These tests create many users; password strength is not what they test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def radiologist(make_user):
    return make_user("radiologist", department="radiology")


@pytest.fixture
def certified_radiologist(make_user):
    """Board-certified: the default policy's break-glass rule asks for the certification."""
    return make_user("radiologist", department="radiology", certifications=["board_certified"])


@pytest.fixture
def clinician(make_user):
    return make_user("clinician", department="radiology")


@pytest.fixture
def cardiologist(make_user):
    return make_user("clinician", department="cardiology")


@pytest.fixture
def ingest(db):
    """ingest(relative_or_bytes, department=..., channel=...) -> FileOutcome, through the real pipeline."""
    from medical.models import Channel
    from medical.services import IngestSource, instance_ingest

    def run(
        relative: str, *, department: str = "radiology", channel: str = Channel.API, data: bytes | None = None
    ):
        source = IngestSource(
            channel=channel,
            department=department,
            actor="test:medical",
            received_from="tests",
            previews="skip",
        )
        return instance_ingest(
            source=source, filename=relative, data=file_bytes(relative) if data is None else data
        )

    return run


@pytest.fixture(scope="session")
def tiny_demo_models():
    """The demo tokenizer, model and draft model in the `tiny` profile, trained on every app's registered
    corpus (the medical QA conversations included). Built once for all test processes and kept between
    runs; rebuilt when the corpus changes (the builder compares the corpus fingerprint)."""
    from inference.datasets import iter_corpus
    from tests.support import cached_demo_models

    documents, conversations = [], []
    for _, docs, convs in iter_corpus():
        documents += docs
        conversations += convs
    return cached_demo_models(
        "medical-tiny",
        texts=documents,
        chat_examples=conversations,
        profile="tiny",
    )


@pytest.fixture
def medical_qa_model(db, tiny_demo_models):
    """`medical_qa` served from the tiny demo model, with its draft model, set as the QA default
    (the product's default is SmolLM2; the tiny model keeps these tests fast)."""
    from inference.services import model_default_set, model_register

    model_register(actor="test:medical", path=tiny_demo_models["draft_dir"], name="suite-demo-draft")
    model = model_register(
        actor="test:medical",
        path=tiny_demo_models["target_dir"],
        name="medical_qa",
        draft_name="suite-demo-draft",
    )
    model_default_set(actor="test:medical", purpose="qa", model=model, checked=False)
    return model


NO_WORKER_QUEUE = "medical-tests-no-render-worker"


@pytest.fixture
def no_render_worker(settings):
    """Viewer renders go to a queue no worker reads (as when the worker is not running), whatever
    worker another test started; the queue is emptied afterwards."""
    settings.MEDICAL_RENDER_QUEUE = NO_WORKER_QUEUE
    yield
    from kombu import Queue

    from suite.celery import app

    with app.connection_for_write() as connection:
        Queue(NO_WORKER_QUEUE, channel=connection.default_channel).purge()
