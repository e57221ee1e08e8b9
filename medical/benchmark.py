"""`bench_dicom`: ingest throughput over the files shipped in the pydicom wheel, and QA answer latency.

De-identification alone is timed in memory; ingest covers the whole pipeline (validation,
de-identification, re-encoding, the sealed original, the index rows and the trail event). All of
it runs in a scratch workspace that is rolled back (medical.evaluation.scratch_workspace).
"""

from __future__ import annotations

import time
from collections import Counter

from medical.corpus import TEST_FILES
from medical.dicom import DicomRejected, deidentify, read_dicom
from medical.evaluation import evaluation_user, percentile, scratch_workspace, warm_up
from medical.models import Channel, Study

# Wordings that are not in the dev or unseen sets, over files of several modalities.
QA_QUESTIONS = (
    ("CT_small.dcm", "What slice thickness was used?"),
    ("CT_small.dcm", "Which kVp?"),
    ("CT_small.dcm", "Who is the patient?"),
    ("MR_small.dcm", "What TR was used?"),
    ("MR_small.dcm", "What is the flip angle?"),
    ("MR_small.dcm", "What is the pixel size?"),
    ("rtdose.dcm", "Which dose units?"),
    ("rtdose.dcm", "What is the number of frames?"),
    ("examples_ybr_color.dcm", "What is the photometric interpretation?"),
    ("dicomdirtests/77654033/CT2/17106", "What was the tube current?"),
)


def run_benchmark(*, passes: int = 1, questions: int = 40, model_name: str | None = None) -> dict:
    from medical.services import STORED, IngestSource, instance_ingest, study_question_ask

    payloads = [
        (path.relative_to(TEST_FILES).as_posix(), path.read_bytes())
        for path in sorted(TEST_FILES.rglob("*"))
        if path.is_file()
    ]
    deid_seconds, deidentified = _time_deidentification(payloads)
    with scratch_workspace(model_name=model_name):
        ingest_seconds, stored, statuses = 0.0, {}, Counter()
        for number in range(1, passes + 1):
            source = IngestSource(
                channel=Channel.EVALUATION,
                department=f"bench-{number}",
                actor="command:bench_dicom",
                received_from="bench_dicom",
                previews="skip",
            )
            started = time.perf_counter()
            for relative, data in payloads:
                outcome = instance_ingest(source=source, filename=relative, data=data)
                statuses[outcome.status] += 1
                if number == 1 and outcome.status == STORED:
                    stored[relative] = outcome.study_id
            ingest_seconds += time.perf_counter() - started
        user = evaluation_user(department="bench-1")
        asked = [(stored[file], question) for file, question in QA_QUESTIONS if file in stored]
        warm_up_ms = warm_up(user, Study.objects.get(pk=asked[0][0])) if asked else None
        latencies, phrasing = [], Counter()
        for index in range(questions if asked else 0):
            study_id, question = asked[index % len(asked)]
            started = time.perf_counter()
            answer = study_question_ask(user=user, study=Study.objects.get(pk=study_id), question=question)
            latencies.append((time.perf_counter() - started) * 1000)
            phrasing[answer.phrasing] += 1
        qa_model = _configured_model()  # inside the workspace: --model is the default only there
    files = len(payloads) * passes
    return {
        "files": files,
        "stored": statuses["stored"],
        "duplicate": statuses["duplicate"],
        "rejected": statuses["rejected"],
        "failed": statuses["failed"],
        "ingest_seconds": round(ingest_seconds, 3),
        "ingest_instances_per_s": round(statuses["stored"] / ingest_seconds, 1) if ingest_seconds else None,
        "ingest_files_per_s": round(files / ingest_seconds, 1) if ingest_seconds else None,
        "deid_instances_per_s": round(deidentified / deid_seconds, 1) if deid_seconds else None,
        "qa_questions": len(latencies),
        "qa_warm_up_ms": warm_up_ms,
        "qa_latency_ms_p50": percentile(latencies, 0.5),
        "qa_latency_ms_p95": percentile(latencies, 0.95),
        "qa_phrasing": dict(phrasing),
        "qa_model": qa_model,
    }


def _time_deidentification(payloads: list[tuple[str, bytes]]) -> tuple[float, int]:
    """Validation plus de-identification in memory, for every file that validates."""
    from medical.keys import dicom_uid_key

    key = dicom_uid_key()
    elapsed, count = 0.0, 0
    for relative, data in payloads:
        started = time.perf_counter()
        try:
            deidentify(read_dicom(data, filename=relative), uid_key=key)
        except DicomRejected:
            continue
        finally:
            elapsed += time.perf_counter() - started
        count += 1
    return elapsed, count


def _configured_model() -> str | None:
    from medical.services import qa_target

    target = qa_target()
    return target.public_name if target else None
