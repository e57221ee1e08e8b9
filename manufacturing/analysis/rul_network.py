"""A small 1-D convolutional network for remaining useful life over the last cycles of a unit.

Input: the per-operating-condition normalised sensors of `prognostics.RulModel` over a window of the
last `window` cycles (a history shorter than the window is padded with its first cycle) plus the cycle
count as one more channel. Three convolutions over time, a dense layer, one output: RUL / cap (or a
2-layer GRU over the window instead of the convolutions, `architecture="gru"`).
Trained with AdamW on the mean squared error, a fixed seed, early stopping on engines held out of the
member's training set, optionally on the running average of its weights (SWA). Each network draws its
initial weights, batches and dropout masks from generators of its own seeded with its seed, never from
torch's global generator, so networks can train side by side in threads, beside anything else drawing
random numbers, and give the same weights as one after the other. torch is imported here only, inside the functions (never at Django start-up).
Weights travel as base64 float32 arrays in JSON (never pickle), so a stored model cannot run code.
"""

from __future__ import annotations

import base64
import logging
import math
import time

import numpy as np

logger = logging.getLogger(__name__)
CYCLE_SCALE = 200.0  # the cycle channel is cycle / 200 (C-MAPSS lives run ~130-360 cycles)


def baseline(cum: np.ndarray, end: np.ndarray, cycles: int) -> np.ndarray:
    """Per row, the mean of its unit's first `cycles` rows among those seen up to it (all of them before
    then): `cum` is the unit's cumulative sum with a leading zero row, `end` each row's count seen."""
    seen = np.minimum(end, cycles)
    return cum[seen] / seen[:, None]


def windows(
    z: np.ndarray,
    units: np.ndarray,
    cycles: np.ndarray,
    window: int,
    smoothing: float = 0.0,
    *,
    baseline_cycles: int = 0,
) -> np.ndarray:
    """(rows, channels, window): for each row, its unit's last `window` normalised cycles up to and
    including that row, with `smoothing` > 0 also their exponentially smoothed level over the whole
    history (the denoised trend LightGBM gets as a feature), with `baseline_cycles` > 0 also the drift
    of that level (of the cycles themselves without smoothing) from the unit's own baseline (the mean of
    its first `baseline_cycles` cycles seen so far, `baseline`), and the cycle channel.
    Rows must be sorted by unit, then cycle."""
    channels = z.shape[1] * (1 + (smoothing > 0) + (baseline_cycles > 0)) + 1
    out = np.empty((z.shape[0], channels, window), dtype=np.float32)
    for unit in np.unique(units):
        rows = np.flatnonzero(units == unit)
        parts = [z[rows]]
        level = z[rows]
        if smoothing > 0:
            level = np.empty_like(z[rows])
            level[0] = z[rows[0]]
            for i in range(1, rows.size):
                level[i] = smoothing * z[rows[i]] + (1 - smoothing) * level[i - 1]
            parts.append(level)
        if baseline_cycles > 0:
            cum = np.vstack([np.zeros(z.shape[1]), np.cumsum(z[rows], axis=0)])
            parts.append(level - baseline(cum, np.arange(1, rows.size + 1), baseline_cycles))
        x = np.hstack([*parts, (cycles[rows] / CYCLE_SCALE)[:, None]]).astype(np.float32)
        padded = np.vstack([np.repeat(x[:1], window - 1, axis=0), x])
        # row i of the unit sees padded[i : i + window]
        strided = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
        out[rows] = strided[: rows.size]
    return out


def _dropout(p: float, generator):
    """Dropout drawing its masks from the network's own generator (not torch's global one, which
    threads training side by side would share). No parameters: the stored weights' names are unchanged."""
    import torch
    from torch import nn

    class SeededDropout(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.training or p == 0:
                return x
            keep = torch.empty_like(x).bernoulli_(1 - p, generator=generator)
            return x * keep / (1 - p)

    return SeededDropout()


def _network(channels: int, window: int, width: int, architecture: str = "cnn", generator=None, seed=None):
    """The network, its initial weights drawn from a generator of its own seeded with `seed` (None: left
    uninitialised, for weights about to be loaded). It is built on torch's "meta" device, so building it
    draws nothing from torch's global generator, which another thread (a sampling LLM, another network)
    may be drawing from at the same moment."""
    import torch

    with torch.device("meta"):
        net = _architecture(channels, window, width, architecture, generator)
    net = net.to_empty(device="cpu")
    if seed is not None:
        _initial_weights(net, seed)
    return net


def _initial_weights(net, seed: int) -> None:
    """torch's own default initialisation (what `reset_parameters` draws, module by module in the order
    they were built), from `torch.Generator().manual_seed(seed)` instead of the global generator: the
    weights are those `torch.manual_seed(seed)` then building the network would give."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv1d | nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)
            elif isinstance(module, nn.GRU):
                bound = 1.0 / math.sqrt(module.hidden_size)
                for weight in module.parameters():
                    nn.init.uniform_(weight, -bound, bound, generator=generator)
            elif any(True for _ in module.parameters(recurse=False)):
                raise TypeError(f"no initialisation written for {type(module).__name__}")


def _architecture(channels: int, window: int, width: int, architecture: str, generator):
    import torch
    from torch import nn

    if architecture == "gru":
        return _recurrent_network(channels, width, generator)
    if architecture != "cnn":
        raise ValueError(f"unknown RUL network architecture {architecture!r} (cnn or gru)")

    class RulConvNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv1d(channels, width, 5, padding=2),
                nn.ReLU(),
                nn.Conv1d(width, width, 5, padding=2),
                nn.ReLU(),
                nn.Conv1d(width, width, 3, padding=1),
                nn.ReLU(),
            )
            self.head = nn.Sequential(
                nn.Flatten(),
                _dropout(0.2, generator),
                nn.Linear(width * window, 64),
                nn.ReLU(),
                nn.Linear(64, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.features(x)).squeeze(-1)

    return RulConvNet()


def _recurrent_network(channels: int, width: int, generator=None):
    """A GRU over the window (`width` hidden units, 2 layers), its last state through the same head."""
    import torch
    from torch import nn

    class RulRecurrentNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = nn.GRU(channels, width, num_layers=2, batch_first=True)
            self.head = nn.Sequential(
                _dropout(0.2, generator), nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 1)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.gru(x.transpose(1, 2))
            return self.head(out[:, -1]).squeeze(-1)

    return RulRecurrentNet()


def train_member(
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    cap: float,
    seed: int,
    epochs: int,
    patience: int,
    width: int,
    batch: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 1e-3,
    threads: int = 2,
    average_from: int = 0,
    architecture: str = "cnn",
) -> dict:
    """One network; early stopping on the validation engines (the weights of the best epoch are kept).
    `average_from` > 0: from that epoch on the network scored and kept is the running average of the
    weights of every epoch since (stochastic weight averaging, torch.optim.swa_utils): the epoch-to-epoch
    noise of one set of weights averages out without training a second network. `y` may run past
    `cap` (a training knee above the cap); predictions and `y_val` are compared clipped to `cap`.
    Returns {"state": {name: array}, "epochs": trained, "best_epoch", "val_rmse", "seconds"}."""
    import torch

    started = time.perf_counter()
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(seed)
    net = _network(X.shape[1], X.shape[2], width, architecture, generator, seed=seed)
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(epochs, 1))
    averaged = torch.optim.swa_utils.AveragedModel(net) if average_from > 0 else None
    inputs, targets = torch.from_numpy(X), torch.from_numpy((y / cap).astype(np.float32))
    val_inputs = torch.from_numpy(X_val)
    best = (np.inf, 0, None)
    trained = 0
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(inputs.shape[0], generator=generator)
        for start in range(0, order.numel(), batch):
            pick = order[start : start + batch]
            optimiser.zero_grad()
            loss = torch.mean((net(inputs[pick]) - targets[pick]) ** 2)
            loss.backward()
            optimiser.step()
        schedule.step()
        trained = epoch + 1
        scored = net
        if averaged is not None and trained >= average_from:
            averaged.update_parameters(net)
            scored = averaged.module
        if X_val.shape[0] == 0:
            continue
        val = _predict(scored, val_inputs) * cap
        error = float(np.sqrt(np.mean((np.clip(val, 0, cap) - y_val) ** 2)))
        if error < best[0] - 1e-6:
            best = (error, trained, {k: v.detach().clone() for k, v in scored.state_dict().items()})
        elif trained - best[1] >= patience:
            break
    if best[2] is not None:
        net.load_state_dict(best[2])
    elif averaged is not None and trained >= average_from:  # no validation engines: the average
        net.load_state_dict(averaged.module.state_dict())
    logger.info(
        "RUL network: %d epochs, best %s (val RMSE %s), %.1f s",
        trained,
        best[1],
        best[0],
        time.perf_counter() - started,
    )
    return {
        "state": {k: v.detach().numpy().copy() for k, v in net.state_dict().items()},
        "epochs": trained,
        "best_epoch": best[1] or trained,
        "val_rmse": None if best[2] is None else round(best[0], 3),
        "seconds": round(time.perf_counter() - started, 2),
    }


def _predict(net, inputs, batch: int = 4096) -> np.ndarray:
    import torch

    net.eval()
    with torch.no_grad():
        return np.concatenate(
            [net(inputs[i : i + batch]).numpy() for i in range(0, inputs.shape[0], batch)]
        ).astype(float)


def architecture_of(state: dict) -> str:
    """The architecture whose weights these are ("gru" has `gru.*` weights, the CNN `features.*`)."""
    return "gru" if any(name.startswith("gru.") for name in state) else "cnn"


def load_member(state: dict, channels: int, window: int, *, width: int, architecture: str = ""):
    """A stored network, built once and ready to predict (`predict_loaded`); `architecture` "" reads it
    from the weights' names."""
    import torch

    net = _network(channels, window, width, architecture or architecture_of(state))
    net.load_state_dict({k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in state.items()})
    net.eval()
    return net


def predict_loaded(net, X: np.ndarray, *, cap: float, threads: int = 2) -> np.ndarray:
    import torch

    torch.set_num_threads(threads)
    return np.clip(_predict(net, torch.from_numpy(X)) * cap, 0, cap)


def predict_member(
    state: dict, X: np.ndarray, *, cap: float, width: int, threads: int = 2, architecture: str = ""
) -> np.ndarray:
    """Predictions of one stored network; `architecture` "" reads it from the weights' names."""
    net = load_member(state, X.shape[1], X.shape[2], width=width, architecture=architecture)
    return predict_loaded(net, X, cap=cap, threads=threads)


def encode_state(state: dict) -> dict:
    """JSON-safe weights: {name: [shape, base64 of little-endian float32]}."""
    return {
        name: [list(value.shape), base64.b64encode(np.asarray(value, "<f4").tobytes()).decode()]
        for name, value in state.items()
    }


def decode_state(encoded: dict) -> dict:
    return {
        name: np.frombuffer(base64.b64decode(data), dtype="<f4").reshape(shape).copy()
        for name, (shape, data) in encoded.items()
    }
