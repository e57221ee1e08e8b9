"""A shadow run of a DORMANT version sees an account idle for longer than the period's look-back
(its last movement is older than what the run loads), as live screening does."""

from __future__ import annotations

import datetime as dt

import pytest

from finance import services
from finance.models import Alert
from tests.finance.conftest import OTHER_TEAM, TEAM, payment

pytestmark = pytest.mark.django_db
DAY = 86400
T0 = 1_700_000_000
ACTOR = "system:test"


def _ingest(rows: list[dict], team: str = TEAM) -> None:
    services.transactions_ingest(actor=ACTOR, table=services.rows_validate(rows), team=team)


def _moment(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


def test_shadow_run_of_dormant_sees_an_account_idle_beyond_the_look_back():
    # OLD moves on day 0 and again, large, on day 400: 400 days idle, far beyond the 181 days the
    # shadow run loads before its period; RECENT moved 170 days before (not dormant)
    _ingest([payment("d1", T0, "OLD", "X1", 100.0), payment("d2", T0 + 230 * DAY, "RECENT", "X2", 100.0)])
    _ingest([payment("d3", T0 + 400 * DAY, "OLD", "Y1", 6000.0)])
    _ingest([payment("d4", T0 + 400 * DAY + 60, "RECENT", "Y2", 6000.0)])
    # live screening alerted the first (the database's last movement), not the second
    assert Alert.objects.filter(transaction__tx_ref="d3").exists()
    assert not Alert.objects.filter(transaction__tx_ref="d4").exists()

    stricter = services.scenario_version_propose(actor=ACTOR, code="DORMANT", params={"dormant_s": 300 * DAY})
    result = services.scenario_version_shadow_run(
        actor=ACTOR, version=stricter, since=_moment(T0 + 399 * DAY), until=_moment(T0 + 401 * DAY)
    )
    assert result["transactions"] == 2
    # the active version (180 days) alerted d3 live, and the shadow run says so; the proposed
    # one (300 days) would alert it too: 400 days idle
    assert result["alerts_now"] == 1 and result["would_alert"] == 1
    assert result["new_count"] == 0 and result["dropped_count"] == 0

    longer = services.scenario_version_propose(actor=ACTOR, code="DORMANT", params={"dormant_s": 450 * DAY})
    result = services.scenario_version_shadow_run(
        actor=ACTOR, version=longer, since=_moment(T0 + 399 * DAY), until=_moment(T0 + 401 * DAY)
    )
    assert result["alerts_now"] == 1 and result["would_alert"] == 0 and result["dropped"] == ["d3"]


def test_shadow_run_for_a_team_reads_that_team_s_last_movements():
    # OLD's day-0 movement belongs to another team: for TEAM's shadow run OLD has no earlier
    # movement at all (new, not dormant), as the team's own rows say
    _ingest([payment("e1", T0, "OLD", "X1", 100.0)], team=OTHER_TEAM)
    _ingest([payment("e3", T0 + 400 * DAY, "OLD", "Y1", 6000.0)])
    version = services.scenario_version_propose(actor=ACTOR, code="DORMANT", params={"dormant_s": 300 * DAY})
    since, until = _moment(T0 + 399 * DAY), _moment(T0 + 401 * DAY)
    mine = services.scenario_version_shadow_run(
        actor=ACTOR, version=version, since=since, until=until, team=TEAM
    )
    everyone = services.scenario_version_shadow_run(actor=ACTOR, version=version, since=since, until=until)
    assert mine["would_alert"] == 0
    assert everyone["would_alert"] == 1
