"""The manufacturing demo step: two sites with assets, the failure codes and imported work order
histories, C-MAPSS condition data for two turbofan assets (test engines 34 and 1 of FD001: near the
end of life and healthy), a turbofan RUL model trained on FD001 with each engine's prediction, a CWRU
outer-race recording analysed, a 3-D scan of the motor's end shield compared with its CAD model, an
inspection template, the assistant's model, and the demo engineer's open work (filed from the open
alerts, one on hold for parts). Idempotent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile

INCH_MM = 25.4
CWRU_FILE = "cwru_de_0hp/cwru_de_0hp_outer_race_007_at6_130.npy"
DEMO_ACTOR = "demo:bootstrap"
# (tag, name, C-MAPSS FD001 test unit): unit 34 has 7 cycles left, unit 1 has 112
ENGINES = [("ENG-001", "Turbofan engine 34", 34), ("ENG-002", "Turbofan engine 1", 1)]
# The 2 hp CWRU rig motor is far below ISO group 2 (15-300 kW); its limits are set for the rig.
RIG_LIMITS = {"A/B": 0.05, "B/C": 0.1, "C/D": 0.15}
REPLAYED_CYCLES, REPLAY_STEP = 30, 3
DEMO_TRAINING = ["--trees", "150", "--members", "1", "--folds", "3", "--network-epochs", "0"]
CHECKLIST = [
    "Guards and covers in place",
    "No oil or grease leaks",
    "Bearing housing not hot to the touch",
    "No unusual noise or vibration",
    "Belts / couplings in good condition",
    "Foundation bolts tight",
]


def load_demo_manufacturing(say: Callable[[str], None]) -> None:
    from manufacturing.models import (
        BearingGeometry,
        Component,
        ConditionRecord,
        InspectionTemplate,
        Line,
        Machine,
        Site,
        WorkOrder,
    )
    from manufacturing.services.condition import condition_append
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
            "zone_limits": RIG_LIMITS,
        },
    )
    Component.objects.get_or_create(
        machine=motor, name="Drive end bearing", defaults={"kind": "bearing", "bearing": bearing}
    )
    Component.objects.get_or_create(machine=motor, name="Drive end shield", defaults={"kind": "housing"})
    engines = [
        Machine.objects.get_or_create(
            site="site-a", tag=tag, defaults={"line": line_a, "name": name, "family": "turbofan"}
        )[0]
        for tag, name, _ in ENGINES
    ]
    Machine.objects.get_or_create(
        site="site-a", tag="CWC04009", defaults={"line": line_a, "name": "Chiller 9"}
    )
    Machine.objects.get_or_create(
        site="site-b", tag="PMP-B01", defaults={"line": line_b, "name": "Feed pump 1"}
    )
    InspectionTemplate.objects.get_or_create(
        name="Rotating equipment walk-down", defaults={"items": CHECKLIST}
    )
    say("manufacturing: sites site-a and site-b with 5 machines")

    codes = data / "work_orders" / "failure_codes.csv"
    if codes.exists():
        failure_codes_import(path=codes, actor=DEMO_ACTOR)
    for fmt, path in (
        ("chiller", data / "work_orders" / "all_wo_with_code_component_events.csv"),
        ("excavator", data / "failure_modes" / "excavator_work_orders.csv"),
    ):
        if path.exists():
            report = work_order_history_import(path=path, fmt=fmt, site="site-a", actor=DEMO_ACTOR)
            say(f"manufacturing: {fmt} work orders: {report.created} created, {report.skipped} present")
    cmapss = data / "cmapss" / "test_FD001.txt"
    histories = {}
    for engine, (_, _, unit) in zip(engines, ENGINES, strict=True):
        if cmapss.exists():
            histories[engine] = _unit_rows(cmapss, unit)
        if engine in histories and not ConditionRecord.objects.filter(machine=engine).exists():
            rows = histories[engine]
            head = rows[: len(rows) - _replayed(len(rows))]
            condition_append(
                actor=DEMO_ACTOR, machine=engine, rows=head.tolist(), source=cmapss.name, renew=False
            )
            say(f"manufacturing: {len(head)} C-MAPSS cycles (FD001 test unit {unit}) for {engine.tag}")
    _demo_prognostics(data / "cmapss" / "train_FD001.txt", say)
    _demo_readings(histories, say)
    _demo_recording(motor, data / "bearings" / CWRU_FILE, say)
    _demo_failure_classifier(say)
    register_assistant_model(say)
    _demo_open_work_orders(say)
    _demo_scan(motor, say)
    say(f"manufacturing: {WorkOrder.objects.count()} work orders in all")


# Work in progress for the demo engineer, filed from the demo's alerts through the services (trailed):
# (machine tag, alert kind, title, description, priority, days until due, statuses to move through)
OPEN_WORK = [
    (
        "ENG-001",
        "rul",
        "Plan engine 34 replacement",
        "Predicted remaining life below the alert threshold: book the engine change before it fails.",
        1,
        2,
        ("in_progress",),
    ),
    (
        "MTR-CWRU",
        "vibration_zone",
        "Drive-end bearing: outer-race defect",
        "Vibration zone D with an outer-race defect call. Replace the drive-end bearing; check the housing fit.",
        2,
        7,
        (),
    ),
    (
        "CWC04009",
        None,
        "Condenser water pump seal weeping",
        "Small leak at the pump seal found on the walk-down; seal kit on order.",
        3,
        14,
        ("in_progress", "on_hold"),
    ),
]


def _demo_open_work_orders(say: Callable[[str], None]) -> None:
    """File the demo engineer's open work (once): one order per open alert, one on hold for parts."""
    import datetime as dt

    from django.utils import timezone

    from accounts.models import User
    from manufacturing.models import Alert, Machine, WorkOrder
    from manufacturing.services.work_orders import work_order_file, work_order_transition

    engineer = User.objects.filter(username="maintenance", is_active=True).first()
    if engineer is None:  # the demo users are made by bootstrap_demo before this step
        say("manufacturing: no open work orders filed (no demo user 'maintenance')")
        return
    filed = 0
    for tag, kind, title, description, priority, days, moves in OPEN_WORK:
        machine = Machine.objects.filter(tag=tag).first()
        if machine is None or WorkOrder.objects.filter(machine=machine, title=title).exists():
            continue
        alert = (
            Alert.objects.filter(machine=machine, kind=kind, status=Alert.Status.OPEN).first()
            if kind
            else None
        )
        work_order = work_order_file(
            actor=engineer,
            machine=machine,
            title=title,
            description=description,
            priority=priority,
            due=timezone.localdate() + dt.timedelta(days=days),
            team="Mechanical",
            assignee=engineer,
            alert=alert,
        )
        for status in moves:
            work_order = work_order_transition(
                actor=engineer, work_order=work_order, to_status=status, note="demo"
            )
        filed += 1
    if filed:
        say(f"manufacturing: {filed} open work orders filed for the demo engineer")


def _demo_failure_classifier(say: Callable[[str], None]) -> None:
    """Fit the assistant's failure-mode classifier once and store it (suggestions only load it)."""
    from manufacturing.models import FailureClassifierVersion
    from manufacturing.services.failure_classifier import base_training_path, failure_classifier_train

    if FailureClassifierVersion.objects.exists() or not base_training_path().exists():
        return
    use_embeddings = getattr(settings, "MANUFACTURING_DEMO_CLASSIFIER_EMBEDDINGS", True)
    try:
        row = failure_classifier_train(actor=DEMO_ACTOR, use_embeddings=use_embeddings)
    except Exception as error:  # e.g. the embedding model package is missing: the assistant still works
        say(f"manufacturing: no failure-mode classifier ({type(error).__name__}: {error})")
        return
    say(f"manufacturing: failure-mode classifier v{row.version} fitted on {row.examples} examples")


def _unit_rows(path: Path, unit: int):
    from manufacturing.analysis.prognostics import read_cmapss

    data = read_cmapss(path)
    return data[data[:, 0] == unit]


def _replayed(cycles: int) -> int:
    """How many of an engine's last cycles arrive as readings after the model is trained (its RUL
    trend), leaving at least 31 (a full feature window) for the first prediction."""
    return max(0, min(REPLAYED_CYCLES, cycles - 31))


def _demo_readings(histories: dict, say: Callable[[str], None]) -> None:
    """The engines' last cycles arrive as readings, a few at a time, each batch renewing the
    prediction as the worker would (here in-process: the demo runs before any worker): the asset
    page's RUL trend, and the alerts as the engine nears its end."""
    from manufacturing.models import ConditionRecord
    from manufacturing.services.condition import condition_append
    from manufacturing.services.prognostics import rul_renew

    for engine, rows in histories.items():
        stored = ConditionRecord.objects.filter(machine=engine).order_by("-cycle").first()
        if stored is None:
            continue
        pending = rows[rows[:, 1] > stored.cycle]
        for start in range(0, len(pending), REPLAY_STEP):
            batch = pending[start : start + REPLAY_STEP]
            condition_append(
                actor=DEMO_ACTOR, machine=engine, rows=batch.tolist(), source="readings", renew=False
            )
            rul_renew(machine=engine, actor=DEMO_ACTOR, units=[int(batch[0, 0])])
        if len(pending):
            latest = engine.rul_predictions.first()
            say(
                f"manufacturing: {engine.tag}: {len(pending)} more cycles as readings, RUL renewed "
                f"{-(-len(pending) // REPLAY_STEP)} times, now {latest.rul:.0f} cycles at cycle {latest.cycle}"
            )


def _demo_prognostics(train: Path, say: Callable[[str], None]) -> None:
    """Train the turbofan RUL model on FD001 (a demo budget) and predict the engines, once."""
    from django.conf import settings
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from manufacturing.models import RulModelVersion

    if RulModelVersion.objects.filter(family="turbofan").exists() or not train.exists():
        return
    try:
        budget = getattr(settings, "MANUFACTURING_DEMO_TRAINING", DEMO_TRAINING)
        call_command("train_prognostics", "--family", "turbofan", "--file", str(train), *budget)
    except (CommandError, KeyError, ImportError) as error:  # KeyError: the command is not installed
        say(f"manufacturing: no RUL model ({error})")
        return
    for prediction in RulModelVersion.objects.get(family="turbofan").predictions.select_related("machine"):
        say(
            f"manufacturing: {prediction.machine.tag} RUL {prediction.rul:.0f} cycles "
            f"[{prediction.lower:.0f}, {prediction.upper:.0f}]"
        )


def register_assistant_model(say: Callable[[str], None]) -> None:
    """Serve the demo's chat model (SmolLM2 when imported by build_demo_models, else suite-demo) as
    the maintenance assistant's model, if one is built."""
    from inference.services import ModelNotFound, model_register, resolve_target
    from manufacturing.services.assistant import model_name

    for candidate in ("smollm2", "suite-demo"):
        try:
            base = resolve_target(candidate).model
            break
        except ModelNotFound:
            continue
    else:
        say("manufacturing: assistant model not registered (run `manage.py build_demo_models` first)")
        return
    model_register(
        actor=DEMO_ACTOR,
        path=base.path,
        name=model_name(),
        gguf_path=base.gguf_path or None,
        quantization=base.quantization,  # the same GGUF file: its quantization and licence shown
        licence=base.licence,
        draft_name=base.draft.name if base.draft else None,
        description="Maintenance assistant: drafts a diagnosis from similar work orders and the asset's condition",
    )
    say(f"manufacturing: model {model_name()} serves {base.name}")


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


# the drive-end shield's rim worn deeper at each scan: (mm, days before today)
SHIELD_WEAR = ((0.3, 120), (0.55, 60), (0.8, 0))


def _demo_scan(motor, say: Callable[[str], None]) -> None:
    """The motor's drive-end shield scanned three times over four months (a point cloud in the scanner's
    frame, worn 0.3, 0.55 and 0.8 mm at the bearing seat's rim) against its CAD model (an STL mesh: a
    plate with a boss), each compared by the demo engineer through the service (trailed): the scan's
    page gives the wear rate. Synthetic: the shared data holds no scans."""
    import datetime as dt

    import numpy as np
    import trimesh
    from django.utils import timezone

    from accounts.models import User
    from manufacturing.models import ScanComparison
    from manufacturing.selectors import scan_history, scan_wear
    from manufacturing.services.scans import scan_register, scan_upload

    engineer = User.objects.filter(username="maintenance", is_active=True).first()
    shield = motor.components.filter(name="Drive end shield").first()
    if engineer is None or shield is None or ScanComparison.objects.filter(machine=motor).exists():
        return
    plate = trimesh.creation.box(extents=[120.0, 120.0, 12.0])
    boss = trimesh.creation.cylinder(radius=30.0, height=20.0, sections=64)
    boss.apply_translation([0.0, 0.0, 16.0])
    model = trimesh.util.concatenate([plate, boss])
    surface, _ = trimesh.sample.sample_surface(model, 30_000, seed=7)
    surface = np.asarray(surface)
    rim = (surface[:, 2] > 25.9) & (np.hypot(surface[:, 0], surface[:, 1]) > 24.0) & (surface[:, 0] > 0)
    for index, (wear, days_ago) in enumerate(SHIELD_WEAR):
        points = surface.copy()
        points[rim, 2] -= wear  # on one side of the seat's rim
        points += np.random.default_rng(7 + index).normal(0.0, 0.02, points.shape)
        turn = trimesh.transformations.euler_matrix(0.4 + index, -2.6, 1.1)[:3, :3]
        scanned = points @ turn.T + [412.0, -133.0, 57.0]
        xyz = "x y z\n" + "\n".join(f"{x:.4f} {y:.4f} {z:.4f}" for x, y, z in scanned)
        comparison = scan_upload(
            actor=engineer,
            machine=motor,
            component=shield,
            scan_name=f"de-shield-scan-{index + 1}.xyz",
            scan_data=xyz.encode(),
            reference_name="de-shield-model.stl",
            reference_data=model.export(file_type="stl"),
            tolerance=0.5,
            scanned_at=timezone.now() - dt.timedelta(days=days_ago),  # months apart: the rate is per day
            register=False,  # registered here, so the demo shows it without a worker
        )
        scan_register(comparison_id=comparison.pk)
    comparison.refresh_from_db()
    summary = comparison.summary
    _, wear, _ = scan_wear(scan_history(comparison), comparison)
    say(
        f"manufacturing: 3 scans of the drive end shield against its CAD model over 4 months; the latest: "
        f"{summary['beyond_tolerance']} of {summary['points']} points beyond 0.5 mm, wear "
        f"{wear.rate_per_month:.3f} mm a month"
    )
