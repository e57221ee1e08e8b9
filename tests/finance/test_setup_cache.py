"""The per-process screening configuration cache (finance.services.setup.screening_setup): one
query per call when nothing changed, and a change made through the services, by hand in SQL or by
another connection (another process) is what the next call screens with."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from finance import services
from finance.models import ScenarioVersion
from finance.services.scenarios import scenario_version_approve, scenario_version_propose
from finance.services.setup import screening_setup
from tests.finance.conftest import TEAM, structuring_rows


def _structuring(setup) -> dict | None:
    return next((s.params for s in setup.specs if s.code == "STRUCTURING"), None)


@pytest.mark.django_db
def test_a_cached_setup_costs_one_query_and_follows_every_change(officer, officer2):
    first = screening_setup()  # seeds the shipped library on a fresh database
    with CaptureQueriesContext(connection) as queries:
        again = screening_setup()
    assert len(queries) == 1 and again.versions is first.versions  # served from the cache
    assert _structuring(again)["min_count"] == 3

    # through the services (maker-checker): the approved version screens the next call
    proposed = scenario_version_propose(actor=officer, code="STRUCTURING", params={"min_count": 4})
    scenario_version_approve(actor=officer2, version=proposed)
    assert _structuring(screening_setup())["min_count"] == 4
    rows = structuring_rows()  # three payments of 9,500 within hours: 3 < 4, no alert now
    result = services.transactions_ingest(actor=officer, table=services.rows_validate(rows), team=TEAM)
    assert result.alerts == 0

    # by hand in SQL, no ORM, no signal: the parameters edited in place, then the version retired
    table = connection.ops.quote_name(ScenarioVersion._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET params = %s WHERE id = %s",  # noqa: S608
            ['{"threshold_usd": 10000.0, "band": 0.15, "window_s": 259200, "min_count": 2}', proposed.pk],
        )
    assert _structuring(screening_setup())["min_count"] == 2
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET active = %s WHERE id = %s", [False, proposed.pk])  # noqa: S608
    assert _structuring(screening_setup()) is None


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_by_another_connection_is_seen_on_the_next_call(make_user):
    maker, checker = (make_user("compliance_officer", department=TEAM) for _ in range(2))
    assert _structuring(screening_setup())["min_count"] == 3  # cached in this process
    proposed = scenario_version_propose(actor=maker, code="STRUCTURING", params={"min_count": 6})

    def other_process():  # a thread has its own database connection (as another process would)
        try:
            scenario_version_approve(actor=checker, version=proposed)
        finally:
            connections.close_all()

    worker = threading.Thread(target=other_process)
    worker.start()
    worker.join()
    assert ScenarioVersion.objects.get(pk=proposed.pk).active
    setup = screening_setup()
    assert _structuring(setup)["min_count"] == 6
    assert {(s.code, s.version) for s in setup.specs} >= {("STRUCTURING", proposed.version)}
