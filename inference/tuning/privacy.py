"""DP-SGD plumbing around opacus 1.6: noise calibration, Poisson batches, privacy accounting.

Only the LoRA parameters train, so only they get per-sample gradients: opacus hooks the modules
that own trainable parameters and leaves the frozen base model alone. The model is hooked in
place (`wrap_model=False`), so the peft model keeps its own parameter names for saving.

Batches are drawn here, by Poisson sampling (each example joins each step's batch independently
with probability q = 1 / steps per epoch, as opacus' DPDataLoader does), from a generator seeded
per step. That keeps a resumed run on exactly the batches an uninterrupted run would have drawn.
The seed is a secret generated per job, never the user's seed: privacy amplification by
subsampling assumes nobody can tell which examples a step used, and the Gaussian noise must not
be reproducible either. The secret lives only in checkpoints, which are deleted when a job ends.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import warnings
from dataclasses import dataclass
from typing import Any

from inference.tuning.errors import InvalidSettingsError
from inference.tuning.lora_config import DPSettings

# RDP: a closed-form, conservative accountant whose spend can be recomputed every step cheaply.
ACCOUNTANT = "rdp"
# Early in a run the best RDP order is the largest one tried: the bound is then loose (safe), and
# opacus says so on every call.
_LARGEST_ALPHA_WARNING = "Optimal order is the largest alpha"


def new_secret_seed() -> int:
    return secrets.randbits(63)


def derive_seed(base: int, purpose: str, step: int) -> int:
    """An independent 63-bit seed for one purpose at one step (stateless, so resumable)."""
    digest = hashlib.sha256(f"{base}:{purpose}:{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass
class PrivateTraining:
    optimizer: Any  # opacus DPOptimizer wrapping the caller's optimizer
    hooks: Any  # opacus GradSampleHooks: call cleanup() when training ends
    accountant: Any
    noise_generator: Any
    noise_multiplier: float
    sample_rate: float
    expected_batch_size: int


def make_private(model, optimizer, *, dp: DPSettings, train_size: int, batch_size: int, total_steps: int):
    """Attach opacus to `model`/`optimizer` with noise calibrated to spend dp.target_epsilon in total_steps.

    This is opacus' make_private_with_epsilon, except that the noise is calibrated for the steps
    the job will actually run (a step limit can end it before the last epoch), not whole epochs.
    """
    import torch
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier
    from torch.utils.data import DataLoader, TensorDataset

    # Describes the data set's size and batch size to opacus; batches come from poisson_batch().
    index_loader = DataLoader(TensorDataset(torch.arange(train_size)), batch_size=batch_size)
    sample_rate = 1 / len(index_loader)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_LARGEST_ALPHA_WARNING)
            noise_multiplier = get_noise_multiplier(
                target_epsilon=dp.target_epsilon,
                target_delta=dp.delta,
                sample_rate=sample_rate,
                steps=total_steps,
                accountant=ACCOUNTANT,
            )
    except ValueError as exc:  # opacus: "The privacy budget is too low."
        raise InvalidSettingsError(
            {
                "target_epsilon": f"No amount of noise keeps {total_steps} steps within epsilon {dp.target_epsilon}; "
                "allow a larger epsilon or train fewer steps."
            }
        ) from exc
    noise_generator = torch.Generator(device=next(model.parameters()).device)
    with warnings.catch_warnings():
        # Secure mode's hardened noise sampler is off; the noise seed is a per-job secret instead.
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        engine = PrivacyEngine(accountant=ACCOUNTANT)
        hooks, private_optimizer, _ = engine.make_private(
            module=model,
            optimizer=optimizer,
            data_loader=index_loader,
            noise_multiplier=noise_multiplier,
            max_grad_norm=dp.max_grad_norm,
            poisson_sampling=True,
            noise_generator=noise_generator,
            wrap_model=False,
        )
    return PrivateTraining(
        optimizer=private_optimizer,
        hooks=hooks,
        accountant=engine.accountant,
        noise_generator=noise_generator,
        noise_multiplier=float(noise_multiplier),
        sample_rate=sample_rate,
        expected_batch_size=private_optimizer.expected_batch_size,
    )


def poisson_batch(train_size: int, sample_rate: float, *, seed: int) -> list[int]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    chosen = torch.rand(train_size, generator=generator) < sample_rate
    return chosen.nonzero().flatten().tolist()


def prepare_empty_batch(parameters) -> None:
    """Give every trainable parameter an empty per-sample gradient.

    Poisson sampling can draw an empty batch. The step must still add noise and be accounted
    (skipping it would leak that the batch was empty); opacus handles zero-length per-sample
    gradients, but the model cannot run a forward pass on zero examples.
    """
    for parameter in parameters:
        parameter.grad_sample = parameter.new_zeros((0, *parameter.shape))


def spent_epsilon(history: list[tuple[float, float, int]], delta: float) -> float:
    """Epsilon spent by the accountant `history` [(noise multiplier, sample rate, steps), ...].

    The same RDP composition as opacus' RDPAccountant.get_epsilon, with each (sigma, q) curve
    computed once: RDP adds up linearly over steps, so progress can report the spend every step.
    """
    from opacus.accountants.analysis.rdp import get_privacy_spent
    from opacus.accountants.rdp import RDPAccountant

    if not history:
        return 0.0
    total = sum(steps * _rdp_per_step(float(sigma), float(rate)) for sigma, rate, steps in history)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_LARGEST_ALPHA_WARNING)
        epsilon, _ = get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=total, delta=delta)
    return float(epsilon)


@functools.lru_cache(maxsize=16)
def _rdp_per_step(noise_multiplier: float, sample_rate: float):
    from opacus.accountants.analysis.rdp import compute_rdp
    from opacus.accountants.rdp import RDPAccountant

    return compute_rdp(
        q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=RDPAccountant.DEFAULT_ALPHAS
    )
