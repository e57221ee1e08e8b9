"""Demo data: a few real studies from the pydicom wheel for the demo departments, and the QA model.

Idempotent: instances already stored are reported as duplicates, and the model registration is
refreshed in place. Files go through the real ingest pipeline (de-identification, sealed
original, trail), with previews rendered inline since no worker may be running yet.
"""

from __future__ import annotations

from collections.abc import Callable

from medical import conf
from medical.corpus import TEST_FILES
from medical.models import Channel
from medical.services import IngestSource, instance_ingest

DEMO_ACTOR = "demo:bootstrap_demo"
DEMO_STUDIES = (
    ("radiology", "CT_small.dcm"),
    ("radiology", "MR_small.dcm"),
    ("radiology", "dicomdirtests/77654033/CT2/17106"),
    ("radiology", "dicomdirtests/77654033/CT2/17136"),
    ("radiology", "rtdose.dcm"),
    ("cardiology", "examples_ybr_color.dcm"),
    ("cardiology", "waveform_ecg.dcm"),
)
DEMO_BASE_MODEL = "suite-demo"


def load_demo_studies(say: Callable[[str], None]) -> None:
    for department, relative in DEMO_STUDIES:
        path = TEST_FILES / relative
        if not path.is_file():
            say(f"{relative}: not shipped with this pydicom; skipped")
            continue
        source = IngestSource(
            channel=Channel.DEMO,
            department=department,
            actor=DEMO_ACTOR,
            received_from="bootstrap_demo",
            previews="inline",
        )
        outcome = instance_ingest(source=source, filename=relative, data=path.read_bytes())
        say(f"{relative} -> {department}: {outcome.status}{f' ({outcome.reason})' if outcome.reason else ''}")
    register_qa_model(say)


def register_qa_model(say: Callable[[str], None]) -> None:
    """Serve the demo model as the QA model (with its draft for speculative decoding), if it is built."""
    from inference.services import ModelNotFound, model_register, resolve_target

    name = conf.qa_model_name().partition(":")[0]
    try:
        base = resolve_target(DEMO_BASE_MODEL).model
    except ModelNotFound:
        say(
            f"model {name}: not registered, {DEMO_BASE_MODEL} is not built yet (run `manage.py build_demo_models`)"
        )
        return
    model_register(
        actor=DEMO_ACTOR,
        path=base.path,
        name=name,
        draft_name=base.draft.name if base.draft_id else None,
        description="DICOM question answering: phrases answers grounded in de-identified headers",
    )
    say(f"model {name}: serves {base.path}")
