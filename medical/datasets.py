"""The `medical.dicom_qa` DataAdapter: training examples for LoRA jobs from the studies a user may
use as training data (the policy's `train` action on the study: under the default policy, every
study for ML engineers, their own department's for radiologists).

Only de-identified copies are read. Studies whose pixels may carry burned-in text are left out
until a person cleared them, exactly as the QA service keeps them from the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pydicom

from inference.datasets import TrainingExample
from medical import storage
from medical.models import Instance, Study
from medical.qa_examples import header_facts, question_answer_pairs
from medical.qa_format import SYSTEM_PROMPT

FILTER_KEYS = ("department", "modality", "study_ids")


class DicomQaDataAdapter:
    name = "medical.dicom_qa"
    description = (
        "Grounded question/answer pairs and header facts from de-identified DICOM headers, in the QA "
        "service's prompt format. Studies awaiting burned-in annotation review are excluded."
    )
    resource = "model:medical_qa"
    filter_help = 'department (e.g. "radiology"), modality (e.g. "CT"), study_ids (a list of study ids)'

    def examples(self, *, user, filters: dict[str, Any]) -> Iterable[TrainingExample]:
        for instance in self._instances(user, filters):
            dataset = pydicom.dcmread(storage.media_path(instance.deidentified_file), stop_before_pixels=True)
            source = f"instance:{instance.pk}"
            for pair in question_answer_pairs(dataset, source_id=source):
                yield TrainingExample(source_id=pair.source_id, messages=pair.messages)
            facts = header_facts(dataset)
            if facts:
                yield TrainingExample(
                    source_id=f"{source}:facts",
                    prompt=f"{SYSTEM_PROMPT}\nState the main attributes of this image.\n",
                    completion=facts,
                )

    def describe_query(self, *, user, filters: dict[str, Any]) -> str:
        parts = [f"{key}={filters[key]!r}" for key in FILTER_KEYS if filters.get(key)]
        scope = ", ".join(parts) if parts else "no filters"
        count = self._instances(user, filters).count()
        return (
            f"De-identified DICOM instances {user.get_username()} may train on ({scope}); burned-in review "
            f"not required or cleared: {count} instances."
        )

    def _instances(self, user, filters: dict[str, Any]):
        from access.querysets import restrict

        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"Unknown filters {sorted(unknown)}; use {', '.join(FILTER_KEYS)}.")
        studies = restrict(Study.objects.all(), user, "train").filter(
            burned_in_review__in=[Study.BurnedInReview.NOT_REQUIRED, Study.BurnedInReview.CLEARED]
        )
        if filters.get("department"):
            studies = studies.filter(department=filters["department"])
        if filters.get("study_ids"):
            studies = studies.filter(pk__in=list(filters["study_ids"]))
        instances = Instance.objects.filter(series__study__in=studies)
        if filters.get("modality"):
            instances = instances.filter(series__modality__iexact=filters["modality"])
        return instances.order_by("pk")
