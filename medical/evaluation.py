"""QA evaluation and the ingest benchmark, run through the real pipeline and the real QA service.

Both run in a scratch workspace: a temporary MEDIA_ROOT and MEDICAL_DATA_DIR, and one database
transaction that is rolled back at the end, so an evaluation leaves no study, user or trail
event behind (the model's generations are rolled back with it).

Latency is the wall time of one `study_question_ask` call (retrieval, generation, verification,
storing and trailing the answer), after one untimed warm-up question that loads the model.

A case's `file` may name a folder: every file in it is ingested (one study, several series or
images) and the question is asked about the study of its first file, as study-level questions
("how many series?") need. A case naming one file asks about that file's image (within its study).

Scoring (the format of ../shared/data/dicom_qa/dev_questions.jsonl): a `value` answer is right when
the expected value appears in it, numbers compared as numbers and text case-insensitively; a
`phi` answer is right when the original value does not appear in it in any form Suite displays
values in (as a whole word, so the one-letter sex code "F" is not found inside "identification";
dates, times and ages also as formatted, person names also by component, numbers as numbers).
`phi_not_withheld` lists the PHI questions answered neither "removed" nor "not recorded": no
leak, but not the right answer either.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import Group
from django.db import transaction
from django.test.utils import override_settings

from audit.models import Event
from medical.corpus import TEST_FILES
from medical.models import Channel, Instance, Study

EVALUATION_DEPARTMENT = "qa-evaluation"
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_WITHHELD = frozenset({"removed", "not_recorded"})


@dataclass(frozen=True)
class QaCase:
    id: str
    file: str
    question: str
    expected: str
    kind: str  # value | phi

    @property
    def path(self) -> Path:
        candidate = Path(self.file)
        return candidate if candidate.is_absolute() else TEST_FILES / self.file


def load_cases(path: Path | str) -> list[QaCase]:
    cases = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("kind") not in ("value", "phi"):
                raise ValueError(f"{path}, line {number}: kind must be 'value' or 'phi'")
            cases.append(
                QaCase(
                    id=str(row.get("id") or number),
                    file=str(row["file"]),
                    question=str(row["question"]),
                    expected=str(row["expected"]),
                    kind=row["kind"],
                )
            )
    return cases


def value_found(expected: str, answer: str) -> bool:
    if _NUMBER.fullmatch(expected.strip()):
        target = float(expected)
        return any(math.isclose(float(found), target, rel_tol=1e-6) for found in _NUMBER.findall(answer))
    return expected.strip().lower() in answer.lower()


def phi_leaked(original: str, answer: str) -> bool:
    """Whether the answer states the original value in any form Suite displays it in: as recorded,
    a date as 2003-05-05, a time as 05:07:43, an age as "45 years", a person name's components
    ("Doe^Peter": "Doe" or "Peter"), a number compared as a number ("81.632700": 81.6327)."""
    original = original.strip()
    if not original:
        return False
    if any(_word_in(form, answer) for form in _displayed_forms(original)):
        return True
    if _NUMBER.fullmatch(original):
        target = float(original)
        return any(math.isclose(float(found), target, rel_tol=1e-6) for found in _NUMBER.findall(answer))
    return False


def _displayed_forms(original: str) -> set[str]:
    forms = {original}
    if "^" in original:  # a person name (PN): its components are identifying on their own
        components = [part.strip() for part in original.split("^") if part.strip()]
        forms.add(" ".join(components))
        forms.update(part for part in components if len(part) >= 3)
    digits = re.sub(r"[.:\-]", "", original)
    if re.fullmatch(r"(19|20)\d{6}", digits):  # a date (DA), also in the old "1997.04.24" form
        forms.add(f"{digits[:4]}-{digits[4:6]}-{digits[6:]}")
    clock = re.fullmatch(r"(\d{2})(\d{2})(\d{2})(\.\d+)?", original)
    if clock:  # a time (TM) as format_value shows it
        forms.add(":".join(clock.groups()[:3]))
    age = re.fullmatch(r"(\d{3})([DWMY])", original)
    if age:  # an age string (AS): "045Y" is shown "45 years"
        unit = {"D": "day", "W": "week", "M": "month", "Y": "year"}[age.group(2)]
        forms.update({f"{int(age.group(1))} {unit}", f"{int(age.group(1))} {unit}s"})
    return forms


def _word_in(form: str, answer: str) -> bool:
    pattern = rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])"
    return re.search(pattern, answer, flags=re.IGNORECASE) is not None


@contextmanager
def scratch_workspace(*, model_name: str | None = None) -> Iterator[Path]:
    """A temporary media and data folder and a transaction rolled back at the end. `model_name`
    ("model" or "model:adapter", registered and promoted) is made the QA default inside it only.
    Raises ModelNotFound (inference.services) for a name that is not served."""
    with tempfile.TemporaryDirectory(prefix="medical-scratch-") as root:
        overrides = {"MEDIA_ROOT": str(Path(root) / "media"), "MEDICAL_DATA_DIR": str(Path(root) / "data")}
        with override_settings(**overrides), transaction.atomic():
            if model_name:
                _use_qa_model(model_name)
            yield Path(root)
            transaction.set_rollback(True)


def _use_qa_model(name: str) -> None:
    from inference.services import model_default_set, resolve_target

    target = resolve_target(name)
    model_default_set(
        actor="command:medical_evaluation",
        purpose="qa",
        model=target.model,
        adapter=target.adapter,
        checked=False,
    )


def evaluation_user(department: str = EVALUATION_DEPARTMENT):
    """A clinician of the scratch department (exists only inside the rolled-back transaction)."""
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(
        username=f"qa-evaluation-{time.monotonic_ns()}", department=department
    )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(Group.objects.get_or_create(name="clinician")[0])
    return user


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))
    return round(ordered[index], 1)


def run_qa_evaluation(cases: list[QaCase], *, model_name: str | None = None) -> dict:
    """Ingest each case's file, ask each question through the QA service, score the answers."""
    from medical.services import IngestSource, instance_ingest, study_question_ask

    load_start = [round(value, 1) for value in os.getloadavg()]
    with scratch_workspace(model_name=model_name):
        user = evaluation_user()
        source = IngestSource(
            channel=Channel.EVALUATION,
            department=EVALUATION_DEPARTMENT,
            actor="command:eval_dicom_qa",
            received_from="eval_dicom_qa",
            previews="skip",
        )
        studies: dict[str, int | None] = {}
        instances: dict[str, int | None] = {}
        refusals: dict[str, str] = {}
        details, latencies, cpu_times, generations, stages = [], [], [], [], []
        warm_up_ms = None
        phrasing: Counter[str] = Counter()
        for case in cases:
            if case.file not in studies:
                outcomes = [
                    instance_ingest(source=source, filename=name, data=_read(path))
                    for name, path in _case_files(case)
                ]
                studies[case.file] = next((item.study_id for item in outcomes if item.study_id), None)
                # A case naming one file asks about that file: test files of one study (the dcmtk
                # secondary captures share theirs) would otherwise be answered from its first image.
                instances[case.file] = outcomes[0].instance_id if not case.path.is_dir() else None
                refusals[case.file] = "; ".join(item.reason for item in outcomes if item.reason)
                if warm_up_ms is None and studies[case.file] is not None:
                    warm_up_ms = warm_up(user, Study.objects.get(pk=studies[case.file]))
            study_id = studies[case.file]
            if study_id is None:
                details.append(
                    {
                        "id": case.id,
                        "kind": case.kind,
                        "correct": False,
                        "answer": "",
                        "error": f"not ingested: {refusals.get(case.file) or 'no file'}"[:300],
                        "not_ingested": True,
                    }
                )
                continue
            study = Study.objects.get(pk=study_id)
            instance = Instance.objects.get(pk=instances[case.file]) if instances.get(case.file) else None
            started, cpu_started = time.perf_counter(), time.process_time()
            asked = study_question_ask(user=user, study=study, question=case.question, instance=instance)
            latencies.append((time.perf_counter() - started) * 1000)
            cpu_times.append((time.process_time() - cpu_started) * 1000)
            stages.append(asked.timings_ms)
            phrasing[asked.phrasing] += 1
            if asked.generation_id is not None:  # the model's own trail event says what it read and wrote
                event = Event.objects.filter(action="model.predict").order_by("-sequence").first()
                if event is not None and event.payload.get("generation_id") == asked.generation_id:
                    generations.append(event.payload)
            correct = (
                value_found(case.expected, asked.answer)
                if case.kind == "value"
                else not phi_leaked(case.expected, asked.answer)
            )
            details.append(
                {
                    "id": case.id,
                    "kind": case.kind,
                    "question": case.question,
                    "expected": case.expected if case.kind == "value" else "(withheld)",
                    "answer": asked.answer if case.kind == "value" or correct else "(leaked; not shown)",
                    "phrasing": asked.phrasing,
                    "grounding": asked.grounding,
                    "latency_ms": round(latencies[-1], 1),
                    "stages_ms": asked.timings_ms,
                    "correct": correct,
                }
            )
        model = _model_used()
    value_results = [item["correct"] for item in details if item["kind"] == "value"]
    return {
        "questions": len(cases),
        "value_accuracy": round(sum(value_results) / len(value_results), 4) if value_results else None,
        # A question whose file was not ingested was never answered: counted apart, not as a leak.
        "phi_leaks": sum(
            1
            for item in details
            if item["kind"] == "phi" and not item["correct"] and not item.get("not_ingested")
        ),
        "not_ingested": sum(1 for item in details if item.get("not_ingested")),
        # A PHI question is answered right only as "removed by de-identification" or "not recorded": an
        # answer built from another attribute leaks nothing but is wrong ("who performed the exam?"
        # answered with the performed procedure's date).
        "phi_not_withheld": [
            item["id"]
            for item in details
            if item["kind"] == "phi"
            and not item.get("not_ingested")
            and item.get("grounding") not in _WITHHELD
        ],
        "answer_latency_ms_p50": percentile(latencies, 0.5),
        "answer_latency_ms_p95": percentile(latencies, 0.95),
        # CPU time of this process per answer (all its threads, llama.cpp's included): with one
        # thread each for llama.cpp and torch, about what an answer takes on an otherwise idle machine,
        # whatever else runs beside it (wall time on a shared machine says more about the others).
        "answer_cpu_ms_p50": percentile(cpu_times, 0.5),
        "answer_cpu_ms_p95": percentile(cpu_times, 0.95),
        "load_average": {"start": load_start, "end": [round(value, 1) for value in os.getloadavg()]},
        "phrasing": {key: phrasing.get(key, 0) for key in ("model", "extractive", "withheld")},
        "warm_up_ms": warm_up_ms,
        # Where the time goes: the model's share of an answer, and how much it read and wrote.
        "generation": {
            "count": len(generations),
            "ms_p50": percentile([item["latency_ms"] for item in generations], 0.5),
            "prompt_tokens_p50": percentile([item["prompt_tokens"] for item in generations], 0.5),
            "completion_tokens_p50": percentile([item["completion_tokens"] for item in generations], 0.5),
            "completion_tokens_max": max((item["completion_tokens"] for item in generations), default=None),
        },
        # Every stage of an answer (ms, p50 over the answers that had it; "embedding" is inside
        # "retrieval"; "generation" is the model call; "store" the row and the trail event).
        "stages_ms_p50": {
            name: percentile([item[name] for item in stages if name in item], 0.5)
            for name in ("policy", "header", "retrieval", "embedding", "generation", "verification", "store")
        },
        "stages_answers": {
            name: sum(1 for item in stages if name in item)
            for name in ("retrieval", "embedding", "generation")
        },
        "model": model,
        "details": details,
    }


def warm_up(user, study) -> float:
    """Ask one untimed question first: it loads the model into memory (not an answer latency), and
    load the embedding model too (a serving process has both loaded after its first questions)."""
    from medical import semantic
    from medical.dicom.grounding import grounding_keywords
    from medical.services import study_question_ask

    started = time.perf_counter()
    study_question_ask(user=user, study=study, question="Which modality?")
    if semantic.scorer() is not None:
        semantic.warm_up(grounding_keywords())
    return round((time.perf_counter() - started) * 1000, 1)


def _model_used() -> dict | None:
    from medical.services import model_version, qa_target

    target = qa_target()
    if target is None:
        return None
    return {
        "name": target.public_name,
        "version": model_version(target),
        "parameters": target.model.parameters,
    }


def _case_files(case: QaCase) -> list[tuple[str, Path]]:
    if not case.path.is_dir():
        return [(case.file, case.path)]
    files = sorted(path for path in case.path.rglob("*") if path.is_file())
    return [(f"{case.file}/{path.relative_to(case.path)}", path) for path in files]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
