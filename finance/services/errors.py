"""Refusals the finance services raise; the API and portal turn them into 4xx with the message."""

from __future__ import annotations


class FinanceRefused(ValueError):
    """A request the service will not carry out, with a message a person can act on."""


class SubmissionKeyReused(FinanceRefused):
    """A submission key already filed something else (the form was changed after it was sent); 422."""


class FourEyesViolation(FinanceRefused):
    """The officer who prepared a closing, a SAR or a scenario version may not approve it."""


class BatchRejected(FinanceRefused):
    """A batch with bad rows: nothing was written. ``errors`` lists {row, field, message} per problem."""

    def __init__(self, errors: list[dict]):
        self.errors = list(errors)
        head = "; ".join(f"row {e['row']} {e['field']}: {e['message']}" for e in self.errors[:5])
        more = f" (+{len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        super().__init__(f"{len(self.errors)} problem(s), nothing imported: {head}{more}")
