"""The manufacturing demo step: sites, assets, histories, condition data, a trained RUL model with
predictions, an analysed CWRU recording with its alert, an inspection template, a 3-D scan against its
CAD model; idempotent."""

from __future__ import annotations

import pytest

from accounts.demo import create_demo_organisation
from audit.models import Event
from manufacturing.demo import load_demo_manufacturing
from manufacturing.models import (
    Alert,
    ConditionRecord,
    FailureClassifierVersion,
    InspectionTemplate,
    Machine,
    RulModelVersion,
    RulPrediction,
    ScanComparison,
    VibrationRecording,
    WorkOrder,
)

pytestmark = pytest.mark.django_db


def _counts():
    return (
        Machine.objects.count(),
        WorkOrder.objects.count(),
        ConditionRecord.objects.count(),
        RulModelVersion.objects.count(),
        RulPrediction.objects.count(),
        Alert.objects.count(),
    )


def test_demo_step_is_idempotent(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.MODEL_ROOT = tmp_path / "models"
    settings.MANUFACTURING_DEMO_CLASSIFIER_EMBEDDINGS = False  # the char n-gram fit: seconds
    settings.MANUFACTURING_DEMO_TRAINING = [
        "--trees",
        "60",
        "--members",
        "1",
        "--folds",
        "2",
        "--threads",
        "1",
    ]
    create_demo_organisation(password="demo-password-for-tests")
    said: list[str] = []
    load_demo_manufacturing(said.append)
    counts = _counts()
    assert counts[0] == 5 and counts[1] > 9000 and counts[2] == 203 + 31
    recording = VibrationRecording.objects.get()
    assert recording.status == "done", recording.error
    assert recording.analysis.fault == "outer_race" and recording.analysis.zone == "D"
    assert Alert.objects.filter(kind="vibration_zone", machine__tag="MTR-CWRU").count() == 1
    assert RulModelVersion.objects.filter(family="turbofan").count() == 1
    # FD001 test unit 34 (7 cycles left): trained on at cycle 173, its last 30 cycles then arrive as
    # readings, three at a time, each batch renewing the prediction (the asset page's RUL trend)
    trend = list(RulPrediction.objects.filter(machine__tag="ENG-001").order_by("pk"))
    assert [p.cycle for p in trend] == list(range(173, 204, 3))
    near_end = trend[-1]
    assert near_end.rul < trend[0].rul
    healthy = RulPrediction.objects.get(machine__tag="ENG-002")  # unit 1: 31 cycles seen, 112 left
    assert near_end.rul < 40 < healthy.rul and near_end.lower <= near_end.rul <= near_end.upper
    assert Alert.objects.filter(kind="rul", machine__tag="ENG-001").exists()
    assert InspectionTemplate.objects.count() == 1
    assert FailureClassifierVersion.objects.get().version == 1  # fitted once, stored, then only loaded
    # the demo engineer's open work: filed from the open alerts, through the services, trailed
    open_work = {w.machine.tag: w for w in WorkOrder.objects.exclude(status__in=WorkOrder.TERMINAL)}
    assert {tag: w.status for tag, w in open_work.items()} == {
        "ENG-001": "in_progress",
        "MTR-CWRU": "open",
        "CWC04009": "on_hold",
    }
    assert open_work["ENG-001"].alert.kind == "rul" and open_work["MTR-CWRU"].alert.kind == "vibration_zone"
    assert not Alert.objects.filter(status=Alert.Status.OPEN, work_orders__isnull=False).exists()
    # the end shield's latest scan against its CAD model (an STL): its worn rim, and nothing else, beyond
    # 0.5 mm; its three scans over four months give the wear rate (0.5 mm deeper in 120 days: 0.13 a month)
    scans = list(ScanComparison.objects.order_by("created_at"))
    scan = scans[-1]
    assert len(scans) == 3 and {s.status for s in scans} == {"done"}
    assert scan.component.name == "Drive end shield" and scan.reference_name.endswith(".stl")
    assert 200 <= scan.summary["beyond_tolerance"] <= 400 and scan.summary["deviation_max"] < 1.0
    assert scans[0].summary["beyond_tolerance"] == 0 < scans[1].summary["beyond_tolerance"]
    from manufacturing.selectors import scan_history, scan_wear

    _, wear, _ = scan_wear(scan_history(scan), scan)
    assert wear.beyond and 0.1 <= wear.rate_per_month <= 0.16
    assert all(w.assignee.username == "maintenance" and w.due for w in open_work.values())
    assert Event.objects.filter(action="work_order.file").count() == 3
    load_demo_manufacturing(said.append)
    assert _counts() == counts and FailureClassifierVersion.objects.count() == 1
    assert VibrationRecording.objects.count() == 1
    assert set(Machine.objects.values_list("site", flat=True)) == {"site-a", "site-b"}
