"""The manufacturing demo step: two sites with assets, the failure codes and imported work order
histories, C-MAPSS condition data for a turbofan asset and a CWRU outer-race recording. Idempotent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile

INCH_MM = 25.4
CWRU_FILE = "cwru_de_0hp/cwru_de_0hp_outer_race_007_at6_130.npy"


def load_demo_manufacturing(say: Callable[[str], None]) -> None:
    from manufacturing.models import (
        BearingGeometry,
        Component,
        ConditionRecord,
        Line,
        Machine,
        Site,
        WorkOrder,
    )
    from manufacturing.services.condition import condition_import
    from manufacturing.services.failure_codes import failure_codes_import
    from manufacturing.services.work_orders import work_order_history_import

    data = Path(settings.SHARED_DATA_DIR)
    site_a, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "Site A (chillers and engines)"})
    site_b, _ = Site.objects.get_or_create(code="site-b", defaults={"name": "Site B (pumps)"})
    line_a, _ = Line.objects.get_or_create(site=site_a, name="Utilities")
    line_b, _ = Line.objects.get_or_create(site=site_b, name="Pumping")
    bearing, _ = BearingGeometry.objects.get_or_create(
        designation="SKF 6205-2RS JEM",
        defaults={
            "ball_count": 9,
            "ball_diameter_mm": round(0.3126 * INCH_MM, 3),
            "pitch_diameter_mm": round(1.537 * INCH_MM, 3),
        },
    )
    motor, _ = Machine.objects.get_or_create(
        site="site-a",
        tag="MTR-CWRU",
        defaults={
            "line": line_a,
            "name": "2 hp test motor (CWRU rig)",
            "criticality": "A",
            "rated_rpm": 1797,
        },
    )
    Component.objects.get_or_create(
        machine=motor, name="Drive end bearing", defaults={"kind": "bearing", "bearing": bearing}
    )
    engine, _ = Machine.objects.get_or_create(
        site="site-a",
        tag="ENG-001",
        defaults={"line": line_a, "name": "Turbofan engine 1", "family": "turbofan"},
    )
    Machine.objects.get_or_create(
        site="site-a", tag="CWC04009", defaults={"line": line_a, "name": "Chiller 9"}
    )
    Machine.objects.get_or_create(
        site="site-b", tag="PMP-B01", defaults={"line": line_b, "name": "Feed pump 1"}
    )
    say("manufacturing: sites site-a and site-b with 4 machines")

    codes = data / "work_orders" / "failure_codes.csv"
    if codes.exists():
        failure_codes_import(path=codes, actor="demo:bootstrap")
    for fmt, path in (
        ("chiller", data / "work_orders" / "all_wo_with_code_component_events.csv"),
        ("excavator", data / "failure_modes" / "excavator_work_orders.csv"),
    ):
        if path.exists():
            report = work_order_history_import(path=path, fmt=fmt, site="site-a", actor="demo:bootstrap")
            say(f"manufacturing: {fmt} work orders: {report.created} created, {report.skipped} present")
    cmapss = data / "cmapss" / "train_FD001.txt"
    if cmapss.exists() and not ConditionRecord.objects.filter(machine=engine).exists():
        count = condition_import(machine=engine, path=cmapss, units={1}, actor="demo:bootstrap")
        say(f"manufacturing: {count} C-MAPSS cycles for ENG-001")
    _demo_recording(motor, data / "bearings" / CWRU_FILE, say)
    say(f"manufacturing: {WorkOrder.objects.count()} work orders in all")


def _demo_recording(motor, path: Path, say: Callable[[str], None]) -> None:
    from manufacturing.models import VibrationRecording
    from manufacturing.services.recordings import recording_analyse

    if (
        not path.exists()
        or VibrationRecording.objects.filter(machine=motor, original_name=path.name).exists()
    ):
        return
    recording = VibrationRecording(
        machine=motor,
        component=motor.components.first(),
        original_name=path.name,
        file_format="npy",
        sample_rate=12000,
        rpm=1796,
        units="g",
    )
    recording.file.save(f"{motor.tag}.npy", ContentFile(path.read_bytes()), save=False)
    recording.save()
    status = recording_analyse(recording_id=recording.pk)
    say(f"manufacturing: CWRU outer-race recording stored, analysis {status}")
