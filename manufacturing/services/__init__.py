"""Writes of the manufacturing app (each authorized and trailed in the same transaction)."""

from manufacturing.services.alerts import analysis_store, prediction_store
from manufacturing.services.condition import ConditionRefused, condition_append, rul_model_exists
from manufacturing.services.failure_codes import failure_codes_import
from manufacturing.services.recordings import RecordingRefused, recording_upload
from manufacturing.services.work_orders import (
    SubmissionKeyReused,
    WorkOrderRefused,
    work_order_file,
    work_order_history_import,
    work_order_transition,
)

__all__ = [
    "ConditionRefused",
    "condition_append",
    "rul_model_exists",
    "RecordingRefused",
    "recording_upload",
    "SubmissionKeyReused",
    "WorkOrderRefused",
    "analysis_store",
    "failure_codes_import",
    "prediction_store",
    "work_order_file",
    "work_order_history_import",
    "work_order_transition",
]
