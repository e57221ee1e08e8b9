"""What a finished job leaves in its output directory, and how a job is recognised there.

output_dir/adapter holds the LoRA adapter in peft format (adapter_config.json and
adapter_model.safetensors) plus suite-training.json (base model, settings, outcome);
output_dir/outcome.json records a completed job, so a re-delivered task returns it instead of
training twice. Both are written into a temporary name and renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from inference.tuning.errors import BrokenWeightsError, CheckpointMismatchError

OUTCOME_FILE = "outcome.json"
ADAPTER_FOLDER = "adapter"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
TRAINING_RECORD_FILE = "suite-training.json"
# Bump when a change makes old checkpoints unusable (their fingerprint then no longer matches).
JOB_FORMAT = 1


def job_fingerprint(
    *,
    base_model_dir: Path,
    train_examples: Sequence[Mapping[str, Any]],
    eval_examples: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
) -> str:
    """Identifies a job by everything that shapes its result; checkpoints only resume the same job."""
    digest = hashlib.sha256()
    header = {"format": JOB_FORMAT, "base_model_dir": str(base_model_dir), "settings": settings}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for label, examples in (("train", train_examples), ("eval", eval_examples)):
        digest.update(label.encode())
        for example in examples:
            digest.update(json.dumps(example, sort_keys=True, ensure_ascii=False).encode() + b"\0")
    return digest.hexdigest()


def recorded_outcome(output: Path, fingerprint: str) -> dict[str, Any] | None:
    """The recorded outcome of this job if it completed and its adapter is still there."""
    path = output / OUTCOME_FILE
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text())
    if recorded.pop("fingerprint", None) != fingerprint:
        raise CheckpointMismatchError(
            f"{output} holds the result of a different job; use a new output directory or delete the old one."
        )
    if not (Path(recorded["adapter_dir"]) / ADAPTER_WEIGHTS_FILE).is_file():
        return None  # the adapter was removed since: train again
    return recorded


def record_outcome(output: Path, fingerprint: str, outcome: Mapping[str, Any]) -> None:
    _write_json_atomically(output / OUTCOME_FILE, {"fingerprint": fingerprint, **outcome})


def save_adapter(model, output: Path, *, record: Mapping[str, Any]) -> Path:
    """Save the peft model's adapter, check the file holds the trained weights, then move it into place."""
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import load_file

    final = output / ADAPTER_FOLDER
    scratch = output / f".tmp-{ADAPTER_FOLDER}"
    shutil.rmtree(scratch, ignore_errors=True)
    model.save_pretrained(str(scratch), safe_serialization=True)
    written = load_file(scratch / ADAPTER_WEIGHTS_FILE)
    expected = get_peft_model_state_dict(model)
    if written.keys() != expected.keys() or not all(
        torch.equal(written[key], expected[key].detach().cpu()) for key in expected
    ):
        raise BrokenWeightsError(f"The adapter written to {scratch} does not hold the trained LoRA weights.")
    (scratch / TRAINING_RECORD_FILE).write_text(json.dumps(record, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    scratch.rename(final)
    return final


def _write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    scratch = path.with_name(f".tmp-{path.name}")
    scratch.write_text(json.dumps(data, indent=2))
    scratch.replace(path)
