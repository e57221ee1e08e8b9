"""Synthetic vibration recordings of rolling-element bearings with a known answer, for the tests and the
robustness sweep (`scripts/vibration_robustness.py`): what the fault call must get right on geometries,
speeds and sample rates that no shared recording has."""

from __future__ import annotations

import numpy as np

from manufacturing.analysis.bearings import BearingGeometry

FAULTS = (None, "outer_race", "inner_race", "ball")


def synthetic_recording(
    fault: str | None,
    bearing: BearingGeometry,
    rpm: float,
    sample_rate: float,
    *,
    seconds: float = 3.0,
    seed: int = 0,
    snr_db: float = 0.0,
    slip: float = 0.01,
) -> np.ndarray:
    """Acceleration (g) of a machine running at `rpm`: two shaft harmonics and broadband noise, plus for a
    `fault` a defect that strikes with random slip (`slip`, the relative spread of the gaps between
    strikes: rolling elements skid), each strike ringing a structural resonance (3.5 kHz or a quarter of
    the sample rate). Inner-race strikes are modulated by the shaft (the defect passes through the load
    zone once a revolution), ball strikes (twice per ball spin) by the cage. `snr_db`: the defect's power
    over the noise's. `fault` None: the shaft lines and noise alone (a healthy bearing)."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}")
    rng = np.random.default_rng(seed)
    n, shaft = int(sample_rate * seconds), rpm / 60
    t = np.arange(n) / sample_rate
    machine = 0.2 * np.sin(2 * np.pi * shaft * t) + 0.08 * np.sin(2 * np.pi * 2 * shaft * t + 1.0)
    if fault is None:
        return machine + 0.05 * rng.standard_normal(n)
    orders = bearing.orders()
    rate = {"outer_race": orders["bpfo"], "inner_race": orders["bpfi"], "ball": 2 * orders["bsf"]}[
        fault
    ] * shaft
    gaps = (1 + slip * rng.standard_normal(int(seconds * rate) + 2)) / rate
    strikes = np.cumsum(gaps) - gaps[0] * rng.uniform()
    strikes = strikes[strikes < seconds]
    modulation = {"inner_race": shaft, "ball": orders["ftf"] * shaft}.get(fault, 0.0)
    train = np.zeros(n)
    np.add.at(train, (strikes * sample_rate).astype(int), 1 + 0.6 * np.cos(2 * np.pi * modulation * strikes))
    ring_t = np.arange(int(0.004 * sample_rate)) / sample_rate
    resonance = min(3500.0, sample_rate / 4)
    ring = np.exp(-2 * np.pi * 0.05 * resonance * ring_t) * np.sin(2 * np.pi * resonance * ring_t)
    defect = np.convolve(train, ring)[:n]
    noise = np.sqrt(np.mean(defect**2) / 10 ** (snr_db / 10)) * rng.standard_normal(n)
    return machine + defect + noise
