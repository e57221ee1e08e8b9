"""Training checkpoints on disk: written atomically, found again after a worker is killed.

A checkpoint is a folder `step-N` holding the LoRA weights (safetensors), the optimizer state
(a torch state dict, loaded back with weights_only=True, so no pickled code runs) and state.json
(step, counters, the job fingerprint, the DP accountant history and the random seeds the run
derives its per-step randomness from). It is written into a hidden temporary folder and renamed
into place, so a folder named `step-N` is always complete; only the newest one is kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.tuning.errors import TuningError

WEIGHTS_FILE = "lora.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
STATE_FILE = "state.json"
_STEP_FOLDER = re.compile(r"^step-(\d+)$")
_TEMPORARY_PREFIX = ".tmp-"


class CheckpointWriteError(TuningError):
    """A checkpoint could not be written (e.g. the disk is full); the job fails with this message."""


@dataclass(frozen=True)
class Checkpoint:
    path: Path
    step: int
    weights: dict[str, Any]  # parameter name -> tensor
    optimizer_state: dict[str, Any]
    state: dict[str, Any]


def save_checkpoint(
    root: Path, *, step: int, weights: dict[str, Any], optimizer_state: dict[str, Any], state: dict[str, Any]
) -> Path:
    """Write checkpoint `step` under `root` and drop the older ones; returns its folder."""
    import torch
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    _remove_temporary_folders(root)
    final = root / f"step-{step}"
    scratch = root / f"{_TEMPORARY_PREFIX}step-{step}-{os.getpid()}"
    try:
        scratch.mkdir()
        save_file(
            {name: tensor.detach().contiguous().cpu() for name, tensor in weights.items()},
            scratch / WEIGHTS_FILE,
        )
        torch.save(optimizer_state, scratch / OPTIMIZER_FILE)
        (scratch / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=2))
        for written in scratch.iterdir():
            _fsync(written)
    except Exception as exc:  # a full disk surfaces as OSError, RuntimeError (torch) or SafetensorError
        # Nothing half-written stays behind; the previous checkpoint is untouched and still the newest.
        shutil.rmtree(scratch, ignore_errors=True)
        raise CheckpointWriteError(
            f"Could not write the checkpoint of step {step} under {root}: {exc}. Free space there (or "
            "set TUNING_OUTPUT_ROOT to a larger disk) and retry the job: it resumes from its newest "
            "complete checkpoint."
        ) from exc
    if final.exists():  # the same step written by an earlier attempt of this job
        shutil.rmtree(final)
    scratch.rename(final)
    _fsync(root)
    for older_step, older in _step_folders(root):
        if older_step != step:
            shutil.rmtree(older, ignore_errors=True)
    return final


def latest_checkpoint_path(root: Path) -> Path | None:
    folders = _step_folders(root)
    return max(folders)[1] if folders else None


def load_checkpoint(path: Path, *, device=None) -> Checkpoint:
    import torch
    from safetensors.torch import load_file

    state = json.loads((path / STATE_FILE).read_text())
    return Checkpoint(
        path=path,
        step=int(state["step"]),
        weights=load_file(path / WEIGHTS_FILE, device=str(device or "cpu")),
        optimizer_state=torch.load(path / OPTIMIZER_FILE, map_location=device or "cpu", weights_only=True),
        state=state,
    )


def remove_checkpoints(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def _step_folders(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP_FOLDER.match(child.name)
        if match and (child / STATE_FILE).is_file():
            found.append((int(match.group(1)), child))
    return found


def _remove_temporary_folders(root: Path) -> None:
    # Left behind by a worker killed while writing; never complete, never read.
    for child in root.iterdir():
        if child.name.startswith(_TEMPORARY_PREFIX):
            shutil.rmtree(child, ignore_errors=True)


def _fsync(path: Path) -> None:
    # Rename is atomic, but without a flush a power cut can leave a renamed folder of empty files.
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
