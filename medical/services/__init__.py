"""Writes of the medical app. Import from here; the submodules are implementation detail.

- ingest: instance_ingest (one file, any channel, e.g. the SCP)
- uploads: upload_ingest (portal/API requests: several files, ZIP archives)
- previews: instance_preview_render (run by the Celery task)
- qa: study_question_ask (grounded answers, trailed)
- studies: study_share, study_unshare, original_read_break_glass, study_burned_in_review
"""

from medical.services.ingest import (
    DUPLICATE,
    FAILED,
    REJECTED,
    SKIPPED,
    STORED,
    FileOutcome,
    IngestReport,
    IngestSource,
    instance_ingest,
)
from medical.services.previews import instance_preview_render
from medical.services.qa import QuestionRejected, model_version, qa_target, study_question_ask
from medical.services.studies import (
    StudyActionRefused,
    original_read_break_glass,
    study_burned_in_review,
    study_share,
    study_unshare,
)
from medical.services.uploads import UploadRefused, upload_ingest

__all__ = [
    "DUPLICATE",
    "FAILED",
    "REJECTED",
    "SKIPPED",
    "STORED",
    "FileOutcome",
    "IngestReport",
    "IngestSource",
    "QuestionRejected",
    "StudyActionRefused",
    "UploadRefused",
    "instance_ingest",
    "instance_preview_render",
    "model_version",
    "qa_target",
    "original_read_break_glass",
    "study_burned_in_review",
    "study_question_ask",
    "study_share",
    "study_unshare",
    "upload_ingest",
]
