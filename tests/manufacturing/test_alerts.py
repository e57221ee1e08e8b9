"""Analysis results and RUL predictions raise alerts: zone C/D, a defect called in zone A/B, RUL below
the machine's threshold; a condition that stands raises no second alert until it escalates."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from audit.models import Event
from manufacturing.models import Alert, FailureCode, RulModelVersion, VibrationRecording
from manufacturing.services import analysis_store, prediction_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def recording(machine_a, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    rec = VibrationRecording(machine=machine_a, sample_rate=12000, rpm=1797, units="g")
    rec.file.save("r.csv", ContentFile(b"0.1\n0.2\n"), save=False)
    rec.save()
    return rec


def _result(zone: str, fault: str = "outer_race", rms: float = 7.3) -> dict:
    return {"zone": zone, "rms_velocity": rms, "peak": 1.0, "crest": 4.2, "kurtosis": 6.1, "fault": fault}


@pytest.mark.parametrize(
    ("zone", "fault", "kind"),
    [
        ("A", "none", None),
        ("B", "", None),
        ("A", "outer_race", "defect"),
        ("B", "inner_race", "defect"),
        ("C", "none", "vibration_zone"),
        ("C", "outer_race", "vibration_zone"),
        ("D", "outer_race", "vibration_zone"),
    ],
)
def test_zone_c_and_d_and_a_defect_called_before_raise_an_alert(recording, zone, fault, kind):
    result = _result(zone, fault)
    analysis = analysis_store(recording=recording, result=result)
    assert analysis.zone == zone and analysis.result == result
    assert VibrationRecording.objects.get(pk=recording.pk).status == "done"
    assert list(Alert.objects.filter(recording=recording).values_list("kind", flat=True)) == (
        [kind] if kind else []
    )
    # "machine_alert", not the AML "alert" type a compliance officer reads (nor finance's replay)
    assert Event.objects.filter(action="alert.raise", resource_type="machine_alert").count() == bool(kind)
    if kind == "vibration_zone" and fault == "outer_race":
        message = Alert.objects.get().message  # engineers read words, not identifiers
        assert "bearing fault call: outer-race bearing defect" in message and "outer_race" not in message
    if kind == "defect":  # the zone alone would say nothing for months yet
        alert = Alert.objects.get()
        assert alert.severity == "warning" and alert.message.startswith(
            f"{'Outer-race' if fault == 'outer_race' else 'Inner-race'} bearing defect called from the spectra "
            f"while the vibration is still in zone {zone} (7.30 mm/s RMS): plan the repair"
        )


def _analysed(machine, zone: str, fault: str = "outer_race") -> VibrationRecording:
    """Another recording of `machine`, stored with an analysis of `zone` (a route's next reading)."""
    rec = VibrationRecording(machine=machine, sample_rate=12000, rpm=1797, units="g")
    rec.file.save("r.csv", ContentFile(b"0.1\n0.2\n"), save=False)
    rec.save()
    analysis_store(recording=rec, result=_result(zone, fault))
    return rec


def test_a_standing_condition_raises_one_alert_and_an_escalation_supersedes_it(recording, machine_a):
    """A machine monitored hourly in zone D raises one alert, not one an hour; the defect called in zone
    A, then zone C, then D each escalate: the new alert closes the open one below it (trailed), and a
    fall back to C raises nothing."""
    defect = _analysed(machine_a, "A")
    _analysed(machine_a, "A")
    _analysed(machine_a, "B")
    assert list(Alert.objects.values_list("kind", "status")) == [("defect", "open")]
    zone_c = _analysed(machine_a, "C")
    zone_d = _analysed(machine_a, "D")
    for _ in range(3):
        _analysed(machine_a, "D")
    _analysed(machine_a, "C")
    alerts = {a.recording_id: (a.kind, a.severity, a.status) for a in Alert.objects.all()}
    assert alerts == {
        defect.pk: ("defect", "warning", "closed"),
        zone_c.pk: ("vibration_zone", "warning", "closed"),
        zone_d.pk: ("vibration_zone", "danger", "open"),
    }
    superseded = Event.objects.filter(action="alert.supersede").order_by("pk")
    assert [e.payload["by"] for e in superseded] == [
        Alert.objects.get(recording=zone_c).pk,
        Alert.objects.get(recording=zone_d).pk,
    ]


def test_an_alert_whose_work_order_is_done_stands_no_more(recording, machine_a, make_user):
    """Zone D, a work order filed from its alert: more zone D recordings while the work goes on raise
    nothing; once the work order is complete (the bearing replaced), zone D found again is a new alert.
    Another machine's alerts are its own."""
    from manufacturing.models import Machine, WorkOrder

    first = Alert.objects.get(recording=_analysed(machine_a, "D"))
    work_order = WorkOrder.objects.create(machine=machine_a, title="Replace DE bearing", alert=first)
    Alert.objects.filter(pk=first.pk).update(status=Alert.Status.ACKNOWLEDGED)
    _analysed(machine_a, "D")
    assert Alert.objects.count() == 1
    WorkOrder.objects.filter(pk=work_order.pk).update(status=WorkOrder.Status.COMPLETE)
    again = _analysed(machine_a, "D")
    assert Alert.objects.filter(recording=again, kind="vibration_zone", status="open").exists()
    assert Alert.objects.get(pk=first.pk).status == "acknowledged"  # it follows its work order
    other = Machine.objects.create(line=machine_a.line, tag="P-2", name="Pump 2")
    assert Alert.objects.filter(recording=_analysed(other, "D")).exists()


def test_a_result_without_zone_is_refused(recording):
    with pytest.raises(ValueError, match="no ISO zone"):
        analysis_store(recording=recording, result={"rms_velocity": 1.0})
    assert not Alert.objects.exists()


def test_rul_below_threshold_alerts(machine_a):
    model = RulModelVersion.objects.create(family="turbofan", version=1, blob=b"x")
    prediction_store(machine=machine_a, model=model, unit=1, rul=80, lower=60, upper=100)
    assert not Alert.objects.exists()
    prediction_store(machine=machine_a, model=model, unit=1, rul=12, lower=5, upper=25)
    alert = Alert.objects.get()
    assert alert.kind == "rul" and alert.severity == "danger" and "12 cycles" in alert.message
    with pytest.raises(ValueError, match="does not contain"):
        prediction_store(machine=machine_a, model=model, unit=1, rul=50, lower=60, upper=70)
    assert Event.objects.filter(action="rul.predict").count() == 2


def test_rul_at_the_models_replacement_point_says_replace_now(machine_a, client, make_user):
    plan = {"replace_at_rul": 9, "failure_cost": 5.0, "held_out_improvement_over_fixed_pct": 35.6}
    model = RulModelVersion.objects.create(
        family="turbofan", version=3, blob=b"x", description={"replacement_plan": plan}
    )
    # below the machine's threshold (30) but above the replacement point: a warning to plan
    prediction_store(machine=machine_a, model=model, unit=1, rul=20, lower=12, upper=35)
    warning = Alert.objects.get()
    assert warning.severity == "warning" and warning.message.endswith("below 30")
    prediction_store(machine=machine_a, model=model, unit=1, rul=8.6, lower=3, upper=14)
    due = Alert.objects.exclude(pk=warning.pk).get()
    assert due.severity == "danger"
    assert "at or below the replacement point of turbofan v3 (9 cycles): replace now" in due.message
    # a machine with a lower threshold still hears it when the plan says replace (unit 2: unit 1's
    # alert stands)
    machine_a.rul_alert_threshold = 5
    machine_a.save()
    prediction_store(machine=machine_a, model=model, unit=2, rul=9, lower=4, upper=15)
    assert Alert.objects.filter(severity="danger").count() == 2
    # the asset page shows the point and that it is reached
    from accounts.roles import Role

    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site=machine_a.site))
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert "Replace now" in page and "at predicted RUL ≤ 9 cycles" in page and "35.6% cheaper" in page

    # and the asset list says so at a glance, from the latest prediction
    def asset_list() -> str:
        page = client.get("/manufacturing/").content.decode()
        return page[page.index('data-testid="asset-list"') :].split("</ul>")[0]

    assert "RUL 9 cycles · replace now" in asset_list()
    prediction_store(machine=machine_a, model=model, unit=2, rul=40, lower=30, upper=50)
    assert "RUL 40 cycles</span>" in asset_list() and "replace now" not in asset_list()


def test_a_plan_with_a_lead_time_says_order_the_parts(machine_a, client, make_user):
    plan = {
        "replace_at_rul": 20,
        "lead_time": 8,
        "failure_cost": 5.0,
        "held_out_improvement_over_fixed_pct": 30.1,
    }
    model = RulModelVersion.objects.create(
        family="turbofan", version=4, blob=b"x", description={"replacement_plan": plan}
    )
    prediction_store(machine=machine_a, model=model, unit=1, rul=19, lower=11, upper=28)
    alert = Alert.objects.get()
    assert alert.severity == "danger"
    assert alert.message.endswith(
        "at or below the replacement point of turbofan v4 (20 cycles): order parts now, replace within 8 cycles"
    )
    from accounts.roles import Role

    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site=machine_a.site))
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert "Order parts now, replace within 8 cycles</span>" in page
    assert "order parts at predicted RUL ≤ 20 cycles, replace within 8 cycles" in page
    home = client.get("/manufacturing/").content.decode()
    assert "RUL 19 cycles · order parts now, replace within 8 cycles" in home


def test_migration_rewords_alert_messages_stored_before(machine_a):
    """0006_alert_fault_wording: "..., fault call outer_race" becomes the wording engineers read;
    other messages stay as they were."""
    import importlib

    from django.apps import apps

    old = Alert.objects.create(
        machine=machine_a,
        kind="vibration_zone",
        message="Vibration zone D: 6.10 mm/s RMS, fault call outer_race",
    )
    other = Alert.objects.create(machine=machine_a, kind="rul", message="Remaining useful life 12 cycles")
    importlib.import_module("manufacturing.migrations.0006_alert_fault_wording").reword(apps, None)
    old.refresh_from_db()
    other.refresh_from_db()
    assert old.message == "Vibration zone D: 6.10 mm/s RMS, bearing fault call: outer-race bearing defect"
    assert other.message == "Remaining useful life 12 cycles"


def test_the_asset_page_draws_the_units_rul_as_predicted_at_each_cycle(machine_a, client, make_user):
    plan = {"replace_at_rul": 9, "failure_cost": 5.0, "held_out_improvement_over_fixed_pct": 35.6}
    model = RulModelVersion.objects.create(
        family="turbofan", version=5, blob=b"x", description={"replacement_plan": plan}
    )
    from accounts.roles import Role

    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site=machine_a.site))
    prediction_store(machine=machine_a, model=model, unit=2, cycle=100, rul=80, lower=70, upper=95)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert "80 cycles" in page and "at cycle 100" in page
    assert 'data-testid="rul-trend"' not in page  # one point is not a trend
    for cycle, rul in (
        (110, 71),
        (120, 60),
        (120, 58),
        (130, 49),
    ):  # cycle 120 predicted twice: the later counts
        prediction_store(
            machine=machine_a, model=model, unit=2, cycle=cycle, rul=rul, lower=rul - 9, upper=rul + 12
        )
    prediction_store(
        machine=machine_a, model=model, unit=1, cycle=5, rul=120, lower=110, upper=125
    )  # another unit
    prediction_store(machine=machine_a, model=model, unit=2, cycle=140, rul=39, lower=31, upper=50)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    chart = page[page.index('data-testid="rul-trend"') :].split("</svg>")[0]
    assert "Remaining useful life of unit 2" in page
    line = chart.split('<polyline fill="none"')[1].split('points="')[1].split('"')[0].split()
    assert len(line) == 5  # cycles 100, 110, 120, 130, 140 of unit 2
    assert 'class="band"' in chart and ">alert</text>" in chart and ">replace</text>" in chart


def test_a_unit_predicted_at_the_cap_reads_as_a_floor(machine_a, client, make_user):
    """A unit with no wear visible yet is predicted at the model's cap: its page says "at least" the
    band's lower bound, not a RUL of exactly the cap; one below the cap reads as before."""
    from accounts.roles import Role

    model = RulModelVersion.objects.create(
        family="turbofan", version=6, blob=b"x", description={"config": {"cap": 125.0}}
    )
    client.force_login(make_user(Role.MAINTENANCE_ENGINEER, site=machine_a.site))
    prediction_store(machine=machine_a, model=model, unit=1, cycle=31, rul=125.0, lower=110, upper=214)
    rul = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode().split('data-testid="rul">')[1]
    assert rul.startswith("at least 110 cycles") and "9 in 10 such units had at most 214 left" in rul
    prediction_store(machine=machine_a, model=model, unit=1, cycle=120, rul=118.0, lower=98, upper=167)
    rul = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode().split('data-testid="rul">')[1]
    assert rul.startswith("118 cycles") and "rul-no-wear" not in rul.split("</dd>")[0]


def test_a_renewed_prediction_alerts_again_only_when_it_escalates(machine_a):
    """Predictions renewed at every reading: while a unit's RUL alert stands (open, or acknowledged by a
    work order), the next ones add no alert unless they go further: warning, danger (the whole band
    below the threshold), the replacement point; the open ones it goes beyond are closed. A closed alert
    stands no more; other units are apart."""
    plan = {"replace_at_rul": 9, "failure_cost": 5.0, "held_out_improvement_over_fixed_pct": 35.6}
    model = RulModelVersion.objects.create(
        family="turbofan", version=6, blob=b"x", description={"replacement_plan": plan}
    )

    def predict(rul, lower, upper, unit=1):
        prediction_store(machine=machine_a, model=model, unit=unit, rul=rul, lower=lower, upper=upper)
        return list(Alert.objects.order_by("pk").values_list("severity", flat=True))

    assert predict(40, 30, 55) == []
    assert predict(28, 20, 40) == ["warning"]  # below the threshold of 30
    assert predict(25, 17, 36) == ["warning"]  # still a warning: no second alert
    Alert.objects.update(status=Alert.Status.ACKNOWLEDGED)  # a work order was filed from it
    assert predict(22, 15, 33) == ["warning"]
    assert predict(18, 12, 27) == ["warning", "danger"]  # the whole band below 30
    assert predict(15, 9, 24) == ["warning", "danger"]
    assert predict(9, 4, 15) == ["warning", "danger", "danger"]  # the replacement point
    assert "replace now" in Alert.objects.latest("pk").message
    # the open danger alert it goes beyond is closed (trailed); the acknowledged warning follows its
    # work order
    statuses = list(Alert.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["acknowledged", "closed", "open"]
    assert Alert.objects.order_by("pk")[1].message.endswith("[12, 27], the whole band below 30")
    superseded = Event.objects.get(action="alert.supersede")
    assert superseded.payload["by"] == Alert.objects.latest("pk").pk
    assert predict(7, 2, 12) == ["warning", "danger", "danger"]
    assert predict(27, 18, 38, unit=2) == ["warning", "danger", "danger", "warning"]  # another unit
    Alert.objects.filter(prediction__unit=1).update(status=Alert.Status.CLOSED)
    assert predict(6, 1, 11)[-1] == "danger"  # closed alerts stand no more
    assert Event.objects.filter(action="rul.predict").count() == 10  # every prediction is on the trail


def test_an_alert_with_a_work_order_under_way_is_shown_until_the_work_is_done(
    machine_a, machine_b, client, engineer_a, engineer_b, failure_codes
):
    """ "No open alerts" must not read as "no alerts": an alert a work order covers is listed, with the
    work order and its status, on the asset page and the maintenance home, until that work order is
    complete or cancelled; another site's engineer never sees it."""
    from manufacturing.services import work_order_file, work_order_transition

    model = RulModelVersion.objects.create(family="turbofan", version=1, blob=b"x")
    prediction_store(machine=machine_a, model=model, unit=1, rul=12, lower=5, upper=25)
    alert = Alert.objects.get()
    order = work_order_file(actor=engineer_a, machine=machine_a, title="Plan the replacement", alert=alert)
    assert Alert.objects.get().status == Alert.Status.ACKNOWLEDGED

    def in_hand(path: str) -> str:
        page = client.get(path).content.decode()
        if 'data-testid="alerts-in-hand"' not in page:
            return ""
        return page[page.index('data-testid="alerts-in-hand"') :].split("</ul>")[0]

    client.force_login(engineer_a)
    for path in ("/manufacturing/", f"/manufacturing/assets/{machine_a.pk}/"):
        shown = in_hand(path)
        assert "Remaining useful life 12 cycles" in shown and f"work order {order.pk}</a>" in shown
        assert "Open" in shown
        assert "No alert waits for a work order." in client.get(path).content.decode()
    work_order_transition(actor=engineer_a, work_order=order, to_status="in_progress")
    assert "In progress" in in_hand("/manufacturing/")

    client.force_login(engineer_b)  # another site: not even that there is one
    assert in_hand("/manufacturing/") == ""
    assert "Remaining useful life 12 cycles" not in client.get("/manufacturing/").content.decode()

    client.force_login(engineer_a)
    codes = {kind: FailureCode.objects.filter(kind=kind).first().code for kind in ("mode", "cause", "action")}
    work_order_transition(
        actor=engineer_a, work_order=order, to_status="complete",
        failure_mode=codes["mode"], failure_cause=codes["cause"], action_code=codes["action"],
    )  # fmt: skip
    assert in_hand("/manufacturing/") == "" and in_hand(f"/manufacturing/assets/{machine_a.pk}/") == ""
    assert "No open alerts" in client.get("/manufacturing/").content.decode()
