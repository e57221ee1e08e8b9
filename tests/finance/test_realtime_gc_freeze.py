"""Real-time calls move the process's long-lived objects out of the garbage collector's reach
(gc.freeze), once per screening setup, so a full collection does not land inside a later call."""

from __future__ import annotations

import gc
import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from finance.services.sanctions import sanctions_list_import
from tests.finance.conftest import structuring_rows

pytestmark = pytest.mark.django_db

UN = Path(django_settings.SHARED_DATA_DIR) / "sanctions" / "un_list.csv"
SCREEN = "/api/finance/transactions/screen/"


def _tracked(marker) -> bool:
    """Whether ``marker`` is still in a collected generation (not frozen)."""
    return any(o is marker for o in gc.get_objects())


def _screen(client, row) -> None:
    response = client.post(SCREEN, {"transaction": row}, content_type="application/json")
    assert response.status_code == 200, response.content


def test_realtime_freezes_once_per_setup(client, officer, settings):
    settings.FINANCE_GC_FREEZE = True
    client.force_login(officer)
    rows = structuring_rows()
    # a list imported here gives a setup no earlier test of this process has frozen
    head = "".join(UN.read_text(encoding="utf-8").splitlines(keepends=True)[:21])
    sanctions_list_import(actor="system:test", name="un", source=io.StringIO(head), version="gc-1")
    before = [object()]  # a tracked object made before the first call of the new setup
    _screen(client, rows[0])
    assert not _tracked(before)  # frozen with the setup
    _screen(client, rows[1])  # (the first call on a fresh database seeds the scenario library)
    after = [object()]
    _screen(client, rows[2])  # same setup: no second freeze
    assert _tracked(after)


def test_realtime_freeze_can_be_turned_off(client, officer, settings):
    settings.FINANCE_GC_FREEZE = False
    client.force_login(officer)
    head = "".join(UN.read_text(encoding="utf-8").splitlines(keepends=True)[:31])
    sanctions_list_import(actor="system:test", name="un", source=io.StringIO(head), version="gc-2")
    marker = [object()]
    _screen(client, structuring_rows(prefix="G", account="ACC-G")[0])
    assert _tracked(marker)
