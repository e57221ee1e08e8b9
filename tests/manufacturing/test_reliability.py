"""An asset's reliability (ISO 14224 / EN 15341): failures, MTBF, MTTR and availability from its
completed work orders, the meter's running hours where they span the period, the failure modes that
recur; the shared chiller history joining its asset on import, checked against the CSV read here."""

from __future__ import annotations

import csv
import datetime as dt
import html
import re
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from manufacturing.analysis.reliability import reliability
from manufacturing.models import MeterReading, WorkOrder

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _at(days: float) -> dt.datetime:
    return T0 + dt.timedelta(days=days)


def test_the_figures_from_work_orders_and_the_meter():
    """100 days: 3 failures (4, 6, 2 h down), 2 preventive (1 h each), one failure after the period."""
    orders = [
        (_at(10), False, 4.0, "BRD"),
        (_at(40), False, 6.0, "VIB"),
        (_at(70), False, 2.0, "BRD"),
        (_at(20), True, 1.0, ""),
        (_at(80), True, 1.0, ""),
        (_at(130), False, 9.0, "ELP"),
    ]
    figures = reliability(orders, start=T0, end=_at(100))
    assert (figures.failures, figures.preventive) == (3, 2)
    assert figures.downtime_hours == 14 and figures.failure_downtime_hours == 12
    assert figures.operating_from == "calendar" and figures.operating_hours == 2400 - 14
    assert figures.mtbf_hours == pytest.approx((2400 - 14) / 3) and figures.mttr_hours == 4
    assert figures.availability == pytest.approx(1 - 14 / 2400)
    assert figures.modes == [("BRD", 2), ("VIB", 1)] and figures.failures_without_downtime == 0
    untimed = reliability([*orders, (_at(90), False, 0.0, "BRD")], start=T0, end=_at(100))
    assert untimed.failures_without_downtime == 1 and untimed.mttr_hours == 3  # 12 h over 4: reads low
    # a machine that ran one shift: the meter says 800 h, so MTBF is 800 / 3
    on_meter = reliability(orders, start=T0, end=_at(100), meter_hours=800)
    assert on_meter.operating_from == "meter" and on_meter.mtbf_hours == pytest.approx(800 / 3)
    quiet = reliability(orders, start=_at(85), end=_at(100))
    assert quiet.failures == 0 and quiet.mtbf_hours is None and quiet.mttr_hours is None
    assert figures.same_downtime is None  # three failures: too few to tell a default


def test_one_downtime_on_most_failures_reads_as_a_default():
    """7 of 10 failures record exactly 3 h: a form's default, named; 5 of 10 (under 60%) is not."""
    downtimes = [3.0] * 7 + [1.5, 8.0, 0.0]  # the untimed one is not counted among those recorded
    orders = [(_at(i), False, hours, "BRD") for i, hours in enumerate(downtimes)]
    orders.append((_at(10), False, 12.0, "VIB"))
    assert reliability(orders, start=T0, end=_at(100)).same_downtime == (3.0, 7)  # 7 of 10 recorded
    mixed = [(_at(i), False, 3.0 if i < 5 else 2.0 + i, "BRD") for i in range(10)]
    assert reliability(mixed, start=T0, end=_at(100)).same_downtime is None
    few = [(_at(i), False, 3.0, "BRD") for i in range(9)]
    assert reliability(few, start=T0, end=_at(100)).same_downtime is None


def _chiller_rows(tag: str) -> list[dict]:
    path = Path(settings.SHARED_DATA_DIR) / "work_orders" / "all_wo_with_code_component_events.csv"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return [row for row in csv.DictReader(handle) if row["equipment_id"] == tag]


def _hours(text: str) -> float:
    hours, minutes = text.split(":")[:2]
    return int(hours) + int(minutes) / 60


def test_the_chiller_history_joins_its_asset_and_gives_its_reliability(client, engineer_a, machine_a):
    """machine_a is chiller CWC04009 of site A: the import links its 335 work orders; the asset page,
    with nothing in the last 12 months, gives its whole recorded history: 102 failures, MTBF and MTTR
    as computed here from the CSV itself."""
    assert machine_a.tag == "CWC04009"
    call_command("import_work_orders", "--site", machine_a.site, "--excavator", "")
    rows = _chiller_rows("CWC04009")
    assert machine_a.work_orders.count() == len(rows) == 335
    assert (
        WorkOrder.objects.filter(machine__isnull=True).exclude(equipment_label__contains="CWC04009").exists()
    )
    finished = [dt.datetime.strptime(r["actual_finish"], "%m/%d/%y %H:%M") for r in rows]
    span_hours = (max(finished) - min(finished)).total_seconds() / 3600
    failed = [r for r in rows if r["preventive"] == "FALSE"]
    downtime = sum(_hours(r["duration"]) for r in rows)
    client.force_login(engineer_a)
    page = html.unescape(client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode())
    section = page.split('<section id="reliability">')[1].split("</section>")[0]
    assert "over its recorded history (none was completed in the last 12 months)" in section
    assert f"{min(finished):%Y-%m-%d} to {max(finished):%Y-%m-%d}" in section
    assert f'data-testid="failures">{len(failed)} <' in section
    mtbf = (span_hours - downtime) / len(failed)
    assert f'data-testid="mtbf">{mtbf:,.0f} h' in section
    mttr = sum(_hours(r["duration"]) for r in failed) / len(failed)
    assert f'data-testid="mttr">{mttr:.1f} h' in section
    # most of its failures record the same duration: a default, said beside MTTR
    common, times = Counter(r["duration"] for r in failed).most_common(1)[0]
    assert times >= 0.6 * len(failed)
    said = section.split('data-testid="same-downtime">')[1].split("</span>")[0]
    assert said.startswith(f"{times} of {len(failed)} record exactly {_hours(common):g} h")
    top = max(
        {r["secondary_code"] for r in failed}, key=lambda c: sum(r["secondary_code"] == c for r in failed)
    )
    modes = section.split('data-testid="failure-modes">')[1].split("</ol>")[0]
    count = sum(r["secondary_code"] == top for r in failed)
    assert modes.startswith(f"<li>{count} × <strong>{top}</strong>")
    # asked for the last 12 months: no failure in them, said as such
    recent = client.get(f"/manufacturing/assets/{machine_a.pk}/", {"reliability": "365"}).content.decode()
    assert "no failure in 8," in recent.split('data-testid="mtbf">')[1][:40]
    refused = client.get(f"/manufacturing/assets/{machine_a.pk}/", {"reliability": "forever"})
    assert refused.status_code == 200 and "the last 12 months are shown" in refused.content.decode()
    # the API gives the same figures
    body = client.get(f"/api/manufacturing/assets/{machine_a.pk}/", {"reliability": "all"}).json()[
        "reliability"
    ]
    assert body["failures"] == len(failed) and body["mtbf_hours"] == pytest.approx(mtbf)
    assert body["mttr_hours"] == pytest.approx(mttr) and body["failure_modes"][0]["code"] == top
    assert body["same_downtime"] == {"hours": _hours(common), "failures": times}
    bad = client.get(f"/api/manufacturing/assets/{machine_a.pk}/", {"reliability": "forever"})
    assert bad.status_code == 400 and "reliability: give one of 365, 1095, all" in bad.json()["detail"]
    # the page lists 20 and links to the rest through the work-order search
    assert "All 335 work orders of CWC04009" in page


def test_the_meter_gives_the_operating_time_and_work_in_hand_comes_first(client, engineer_a, machine_a):
    now = timezone.now()
    for days, hours in ((360, 1000.0), (1, 3000.0)):
        MeterReading.objects.create(machine=machine_a, hours=hours, read_at=now - dt.timedelta(days=days))
    for days, down in ((200, 5.0), (100, 3.0)):
        WorkOrder.objects.create(
            site=machine_a.site,
            machine=machine_a,
            title=f"Repair {days}",
            status="complete",
            completed_at=now - dt.timedelta(days=days),
            downtime_hours=down,
            failure_mode="BRD",
        )
    WorkOrder.objects.create(site=machine_a.site, machine=machine_a, title="Leak", priority=1)
    WorkOrder.objects.create(site=machine_a.site, machine=machine_a, title="Paint", priority=4)
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    section = page.split('<section id="reliability">')[1].split("</section>")[0]
    # the meter advanced 2,000 h over the 12 months (its readings span them): 2 failures, 1,000 h each
    assert 'data-testid="mtbf">1,000 h' in section and "running on the meter" in section
    assert 'data-testid="mttr">4.0 h' in section and "no downtime recorded" not in section
    WorkOrder.objects.filter(title="Repair 100").update(downtime_hours=0)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert '2.5 h <span class="muted">downtime per failure; 1 of 2 closed with no downtime recorded' in page
    listed = page.split('data-testid="asset-work-orders"')[1].split("</ul>")[0]
    order = [title for title in ("Leak", "Paint", "Repair 100", "Repair 200") if title in listed]
    assert order == sorted(order, key=listed.index) == ["Leak", "Paint", "Repair 100", "Repair 200"]


def test_history_imported_before_joins_its_asset(machine_a):
    """0021_history_joins_its_asset: a row imported unlinked, naming the asset's tag, gets the asset;
    another site's asset of the same tag does not take it."""
    import importlib

    from django.apps import apps

    row = WorkOrder.objects.create(
        site=machine_a.site,
        external_id="WO1",
        equipment_label="Chiller 9 (CWC04009)",
        title="Fix",
        status="complete",
    )
    mine = WorkOrder.objects.create(site=machine_a.site, title="Filed here", status="open")
    elsewhere = WorkOrder.objects.create(
        site="site-b",
        external_id="WO2",
        equipment_label="Chiller 9 (CWC04009)",
        title="Fix",
        status="complete",
    )
    importlib.import_module("manufacturing.migrations.0021_history_joins_its_asset").join(apps, None)
    for work_order in (row, mine, elsewhere):
        work_order.refresh_from_db()
    assert row.machine == machine_a and mine.machine is None and elsewhere.machine is None


def test_the_bad_actors_are_the_sites_assets_with_most_failures(client, engineer_a, machine_a, machine_b):
    """On the maintenance home: site A's assets ranked by failures in the last 12 months, then downtime;
    site B's worse asset is not shown to site A's engineer; preventive work and older failures do not
    count."""
    from manufacturing.models import Machine

    pump = Machine.objects.create(line=machine_a.line, tag="P-7", name="Pump 7")
    quiet = Machine.objects.create(line=machine_a.line, tag="F-1", name="Fan 1")
    now = timezone.now()

    def done(machine, days, *, preventive=False, down=2.0, mode="BRD"):
        WorkOrder.objects.create(
            site=machine.site,
            machine=machine,
            title="w",
            status="complete",
            preventive=preventive,
            completed_at=now - dt.timedelta(days=days),
            downtime_hours=down,
            failure_mode=mode,
        )

    for days in (10, 50, 90):
        done(pump, days, mode="ELP")
    done(machine_a, 20)
    done(machine_a, 30, preventive=True)
    done(quiet, 400)  # older than 12 months
    for days in range(5):
        done(machine_b, days + 1)  # another site
    client.force_login(engineer_a)
    page = client.get("/manufacturing/").content.decode()
    ranked = page.split('data-testid="bad-actors">')[1].split("</ol>")[0]
    assert [tag for tag in re.findall(r'#reliability">([^<]+)</a>', ranked)] == ["P-7", "CWC04009"]
    assert "<strong>3 failures</strong>, 6 h down, MTBF " in ranked and "mostly ELP" in ranked
    assert machine_b.tag not in ranked and "F-1" not in ranked
