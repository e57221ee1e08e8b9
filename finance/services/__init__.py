"""Finance (AML) services: the only place finance data is written. See docs/finance.md."""

from finance.services.cases import (
    alerts_assign,
    alerts_group_into_cases,
    attachment_add,
    attachment_content,
    case_close_approve,
    case_close_prepare,
    case_close_reject,
    case_escalate,
    cases_opened_record,
    note_add,
)
from finance.services.errors import BatchRejected, FinanceRefused, FourEyesViolation, SubmissionKeyReused
from finance.services.ingest import (
    IngestResult,
    rows_parties,
    rows_validate,
    table_from_file,
    transactions_ingest,
)
from finance.services.replay import ReplayResult, alert_replay
from finance.services.scenarios import (
    scenario_defaults_ensure,
    scenario_version_approve,
    scenario_version_propose,
    scenario_version_shadow_run,
)

__all__ = [
    "BatchRejected",
    "FinanceRefused",
    "FourEyesViolation",
    "SubmissionKeyReused",
    "IngestResult",
    "ReplayResult",
    "alert_replay",
    "alerts_assign",
    "alerts_group_into_cases",
    "attachment_add",
    "attachment_content",
    "case_close_approve",
    "case_close_prepare",
    "case_close_reject",
    "case_escalate",
    "cases_opened_record",
    "note_add",
    "rows_parties",
    "rows_validate",
    "scenario_defaults_ensure",
    "scenario_version_approve",
    "scenario_version_propose",
    "scenario_version_shadow_run",
    "table_from_file",
    "transactions_ingest",
]
