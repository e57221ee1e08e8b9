"""Errors raised by the tuning core. Torch-free, so the Django layer can catch them by name."""

from __future__ import annotations


class TuningError(Exception):
    """Base class: a fine-tuning job cannot go on."""


class InvalidSettingsError(TuningError, ValueError):
    """Settings or data a person must fix; `errors` maps each offending field to a message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.errors.items()))


class ExamplesError(InvalidSettingsError):
    """Some examples are unusable. `rows` maps each bad example's index to what is wrong with it.

    A data set is used all or nothing: one bad row rejects the whole set, with every bad row listed.
    """

    MAX_ROWS_IN_MESSAGE = 5

    def __init__(self, field: str, rows: dict[int, str]):
        self.field = field
        self.rows = dict(sorted(rows.items()))
        shown = list(self.rows.items())[: self.MAX_ROWS_IN_MESSAGE]
        detail = "; ".join(f"example {index}: {message}" for index, message in shown)
        more = len(self.rows) - len(shown)
        if more:
            detail += f"; and {more} more"
        super().__init__({field: f"{len(self.rows)} unusable example(s): {detail}"})


class BrokenWeightsError(TuningError):
    """An optimizer step left the LoRA weights unchanged or non-finite.

    opacus + peft combinations have silently produced such weights (opacus issue #820), so every
    step is checked. Retrying the same job will not help: treat it as a failed job, not a crash.
    """


class CheckpointMismatchError(TuningError):
    """The output directory holds checkpoints or results of a different job (other data or settings)."""
