"""Refuse work that needs the task queue while its broker is unreachable: 503 with Retry-After.

An API that queues work (a fine-tune job, an upload whose files are processed by a worker) calls
`require_broker()` before it writes anything, so a broker outage leaves nothing half-created: no
record waiting for a message that was never sent. A client retries after Retry-After; once the
broker is back the same request succeeds and the work runs.
"""

from __future__ import annotations

from rest_framework.exceptions import APIException

from ops.health import check_broker

RETRY_AFTER_S = 10


class BrokerUnavailable(APIException):
    status_code = 503
    default_code = "broker_unavailable"

    def __init__(self, error: str):
        super().__init__(
            f"The task queue is unreachable, so nothing was created ({error}). "
            f"Retry in {RETRY_AFTER_S} seconds; if it persists, check the broker (CELERY_BROKER_URL, /readyz)."
        )
        self.wait = RETRY_AFTER_S  # DRF's exception handler sends `wait` as the Retry-After header


def require_broker() -> None:
    """Raise BrokerUnavailable (503, Retry-After) unless the configured broker answers now."""
    check = check_broker()
    if not check["ok"]:
        raise BrokerUnavailable(check["error"])
