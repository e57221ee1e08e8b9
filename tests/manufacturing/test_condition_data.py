"""import_condition_data on the shared C-MAPSS FD001 training file, and its all-or-nothing refusal; readings
appended through the API (all or nothing, a per-row report) and the prediction they renew on the worker."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.models import Event
from manufacturing.analysis.prognostics import read_cmapss
from manufacturing.models import ConditionRecord, RulPrediction
from tests.manufacturing.budgets import TINY

pytestmark = pytest.mark.django_db


def test_imports_cmapss_units(machine_a, capsys):
    call_command("import_condition_data", "--machine", machine_a.tag, "--units", "1,2")
    records = ConditionRecord.objects.filter(machine=machine_a)
    assert set(records.values_list("unit", flat=True)) == {1, 2}
    first = records.get(unit=1, cycle=1)
    assert len(first.settings) == 3 and len(first.sensors) == 21
    assert records.filter(unit=1).count() == 192  # FD001 engine 1 ran 192 cycles
    call_command("import_condition_data", "--machine", machine_a.tag, "--units", "1")
    assert records.filter(unit=1).count() == 192
    assert Event.objects.filter(action="condition.import").count() == 2


def test_a_bad_row_imports_nothing(machine_a, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 " + " ".join(["0.5"] * 24) + "\n1 2 0.1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="row 2: 3 columns"):
        call_command("import_condition_data", "--machine", machine_a.tag, "--file", str(bad))
    assert not ConditionRecord.objects.exists()
    with pytest.raises(CommandError, match="0 machines"):
        call_command("import_condition_data", "--machine", "NOPE")


# --- readings appended through the API, and the prediction they renew --------------------------------
CMAPSS = Path(settings.SHARED_DATA_DIR) / "cmapss"


def _engine(unit: int) -> np.ndarray:
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    return data[data[:, 0] == unit]


def _objects(rows) -> list[dict]:
    return [
        {"unit": int(r[0]), "cycle": int(r[1]), "settings": list(r[2:5]), "sensors": list(r[5:])}
        for r in rows
    ]


def _append(client, machine, rows):
    return client.post(
        f"/api/manufacturing/assets/{machine.pk}/condition/", {"rows": rows}, "application/json"
    )


def test_readings_are_appended_all_or_nothing_with_a_per_row_report(
    client, machine_a, engineer_a, engineer_b
):
    engine = _engine(1)
    client.force_login(engineer_a)
    # objects and plain C-MAPSS rows alike
    first = _append(client, machine_a, _objects(engine[:3]) + engine[3:5].tolist())
    assert first.status_code == 201, first.content
    assert first.json() == {
        "rows": 5,
        "units": {"1": 5},
        "prediction": "not renewed: the asset has no family, so no remaining-life model applies",
    }
    stored = ConditionRecord.objects.get(machine=machine_a, unit=1, cycle=4)
    assert stored.sensors == engine[3, 5:].tolist() and stored.source == "api"
    event = Event.objects.get(action="condition.append")
    assert event.payload["rows"] == 5 and event.payload["units"] == [1] and event.policy
    # the same batch sent again (its answer was lost): answered as before, nothing stored twice
    again = _append(client, machine_a, _objects(engine[:3]) + engine[3:5].tolist())
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["rows"] == 5 and again.json()["units"] == {"1": 5}
    assert Event.objects.filter(action="condition.append").count() == 1
    # a stored cycle with other values is no repeat: refused as out of order
    changed = engine[3:5].tolist()
    changed[1][-1] += 0.5
    assert _append(client, machine_a, changed).status_code == 400
    # one batch with a short sensor list, a cycle already stored, a word for a number and a cycle
    # out of order within the batch: nothing of it is kept, every bad row is named
    bad = _objects(engine[5:10])
    bad[1]["sensors"] = bad[1]["sensors"][:20]
    bad[2]["cycle"] = 4
    bad[3]["settings"][0] = "high"
    bad[4]["cycle"] = 6
    refused = _append(client, machine_a, bad)
    assert refused.status_code == 400
    report = refused.json()
    assert report["detail"].startswith(
        "nothing stored: 4 of 5 readings refused (first: row 2: sensors must be"
    )
    assert [row["row"] for row in report["rows"]] == [2, 3, 4, 5]
    assert "unit 1 cycle 4 is not after its last stored cycle 5" in report["rows"][1]["error"]
    assert "settings value 1 must be a finite number" in report["rows"][2]["error"]
    assert "cycle in this request (6)" in report["rows"][3]["error"]
    assert ConditionRecord.objects.filter(machine=machine_a).count() == 5
    for body, message in (
        ({"rows": []}, "This list may not be empty"),
        ({"rows": [[1, 2, 3]]}, "3 values; a C-MAPSS row has 26"),
        ({"rows": [{"unit": 1, "cycle": 9, "sensor": []}]}, "unknown field(s) sensor"),
        ({"rows": ["1 9 0.1"]}, "a reading is an object"),
    ):
        response = client.post(
            f"/api/manufacturing/assets/{machine_a.pk}/condition/", body, "application/json"
        )
        assert response.status_code == 400 and message in response.content.decode(), response.content
    # another site's engineer cannot see the asset, let alone feed it
    client.force_login(engineer_b)
    assert _append(client, machine_a, _objects(engine[5:6])).status_code == 404
    assert ConditionRecord.objects.filter(machine=machine_a).count() == 5


@pytest.mark.django_db(transaction=True)
def test_new_readings_renew_the_prediction_on_the_worker(
    client, machine_a, engineer_a, celery_worker, tmp_path
):
    train = tmp_path / "train.txt"
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    np.savetxt(train, data[data[:, 0] <= 10], fmt="%g")
    call_command("train_prognostics", "--family", "turbofan", "--file", str(train), "--no-predict", *TINY)
    machine_a.family = "turbofan"
    machine_a.save()
    engine = _engine(1)
    client.force_login(engineer_a)

    def predicted_at(cycle: int) -> RulPrediction:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = RulPrediction.objects.filter(machine=machine_a, unit=1, cycle=cycle).first()
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"no prediction at cycle {cycle} within 120 s")

    response = _append(client, machine_a, engine[:150].tolist())
    assert response.status_code == 201 and response.json()["prediction"] == "queued"
    first = predicted_at(150)
    assert first.lower <= first.rul <= first.upper and first.model.version == 1
    assert _append(client, machine_a, engine[150:180].tolist()).status_code == 201
    later = predicted_at(180)
    # 30 cycles closer to the end of a 192-cycle life: the renewed prediction says so
    assert later.rul < first.rul
    renewals = Event.objects.filter(action="rul.predict", actor_label="task:manufacturing.renew_rul")
    assert renewals.count() == 2 and renewals.latest("pk").payload["cycle"] == 180
    # a message delivered twice stores nothing new
    from manufacturing.services.prognostics import rul_renew

    assert rul_renew(machine=machine_a, actor="test", units=[1]) == []
    # the import command renews at once, without a worker
    out = io.StringIO()
    call_command("import_condition_data", "--machine", machine_a.tag, "--units", "2", stdout=out)
    assert "unit 2 at cycle 287: RUL" in out.getvalue()
    assert RulPrediction.objects.filter(machine=machine_a, unit=2, cycle=287).count() == 1


def test_a_unit_flown_in_several_regimes_is_charted_per_regime(client, engineer_a, machine_a):
    """FD002/FD004-style readings: the regime changes from cycle to cycle and moves every sensor far more
    than wear does. The asset page charts each sensor's deviation from its regime's mean, so the wear
    trend shows; one regime (FD001) stays raw."""
    from manufacturing.analysis.prognostics import CMAPSS_REGIMES

    rng = np.random.default_rng(0)
    level = np.array([500.0, 560.0, 610.0, 540.0, 590.0, 640.0])  # sensor 2 per regime
    rows = []
    for cycle in range(1, 151):
        regime = int(rng.integers(0, 6))
        sensors = [0.0] * 21
        sensors[1] = level[regime] + 0.02 * cycle + rng.normal(0, 0.3)  # wear: 3 over the life
        rows.append(
            ConditionRecord(
                machine=machine_a, unit=7, cycle=cycle, settings=list(CMAPSS_REGIMES[regime]), sensors=sensors
            )
        )
    ConditionRecord.objects.bulk_create(rows)
    client.force_login(engineer_a)
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    chart = page[page.index('data-testid="sensor-2"') :].split("</svg>")[0]
    caption = "Sensor 2 · T24, LPC outlet temperature (°R), normalised per operating regime (6 regimes)"
    assert f"<figcaption>{caption}</figcaption>" in page
    points = chart.split('<polyline fill="none"')[1].split('points="')[1].split('"')[0].split()
    ys = np.array([float(p.split(",")[1]) for p in points])
    assert len(ys) == 150 and abs(np.corrcoef(np.arange(150), ys)[0, 1]) > 0.8  # the wear trend
    # one regime: raw values, as before
    ConditionRecord.objects.filter(machine=machine_a).update(settings=[0.0, 0.0, 100.0])
    page = client.get(f"/manufacturing/assets/{machine_a.pk}/").content.decode()
    assert "normalised per operating regime" not in page
    assert "<figcaption>Sensor 2 · T24, LPC outlet temperature (°R)</figcaption>" in page
