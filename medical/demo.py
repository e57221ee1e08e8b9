"""Demo data: a few real studies from the pydicom wheel for the demo departments.

Idempotent: instances already stored are reported as duplicates. Files go through the real ingest
pipeline (de-identification, sealed original, trail), with previews rendered inline since no
worker may be running yet. Answers are phrased by the QA default model, which `build_demo_models`
sets (SmolLM2), not by anything registered here.
"""

from __future__ import annotations

from collections.abc import Callable

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
