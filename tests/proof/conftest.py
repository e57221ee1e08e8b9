"""Fixtures shared by the proof tests."""

import pytest


@pytest.fixture
def broker_down(settings, tmp_path):
    """The embedded broker pointed at folders that do not exist: every send fails as with a stopped
    broker server (the views' availability check answers 503 with Retry-After)."""
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "gone"),
        "data_folder_out": str(tmp_path / "gone"),
        "processed_folder": str(tmp_path / "gone-processed"),
    }
