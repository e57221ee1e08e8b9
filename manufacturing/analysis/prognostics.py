"""Remaining useful life (RUL) on C-MAPSS-style run-to-failure data: per-operating-condition sensor
normalisation (regime-aware: each regime of the settings has its own sensor mean and spread, so the
same recipe serves the one-regime and the six-regime subsets), windowed features (last 30 cycles: mean,
slope, last, exponentially smoothed level, and since session 26 the level's drift from the unit's own
baseline, the mean of its first 40 cycles) and a LightGBM ensemble; an uncertainty band from
out-of-fold residuals by engine.

And a small 1-D CNN (`rul_network`) on the window of the last 30 normalised cycles and their smoothed
level (the raw window alone overfitted: docs/manufacturing.md), one per fold of engines, each stopped
early on the engines it did not train on, blended with LightGBM at the weight with the lowest
out-of-fold RMSE under the test protocol mirrored on the training engines (`protocol_rmse`: each engine
cut at every cycle, the last cycle scored against the uncapped RUL, engines weighted equally; never
chosen on a test set). Standard C-MAPSS protocol helpers (RUL cap 125, last cycle of each test engine,
RMSE, PHM08 score). No ORM: callers store `to_bytes()`.
"""

from __future__ import annotations

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from manufacturing.analysis import rul_network

COLUMNS = 26  # unit, cycle, 3 operating settings, 21 sensors
FORMAT_VERSION = 2  # 2 adds the networks and the blend weight; version 1 blobs (LightGBM only) still load


# what a blob stored before an option existed was trained with
OPTIONS_BEFORE_THEY_EXISTED = {
    "long_smoothing": 0.0,
    "network_seeds": 1,
    "network_average_from": 0,
    "network_architecture": "cnn",
    "network_window": 0,
    "network_learning_rate": 1e-3,
    "network_workers": 1,
    "knee": 0.0,
    "blend_criterion": "all",
    "protocol_min_history": 30,
    "network_first_index": 0,
    "tail_average": 1,
    "tail_decay": 0.0,
    "tail_plateau": -1.0,
    "baseline_cycles": 0,
    "band_criterion": "all",
    "network_budget_windows": 0,
}


def read_cmapss(path: str | Path) -> np.ndarray:
    """Rows of `unit cycle s1 s2 s3 sensor1..sensor21` (whitespace separated); ValueError names the row."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != COLUMNS:
                raise ValueError(f"{path}: row {number}: {len(parts)} columns, expected {COLUMNS}")
            try:
                rows.append([float(p) for p in parts])
            except ValueError:
                raise ValueError(f"{path}: row {number}: a value is not a number") from None
    if not rows:
        raise ValueError(f"{path}: no rows")
    data = np.asarray(rows)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"{path}: NaN or infinite values")
    return data


def read_rul(path: str | Path) -> np.ndarray:
    try:
        values = np.loadtxt(path, ndmin=1)
    except ValueError as error:
        raise ValueError(f"{path}: one true RUL per line expected ({error})") from None
    return values.astype(float)


def rmse(predicted, true) -> float:
    d = np.asarray(predicted, float) - np.asarray(true, float)
    return float(np.sqrt(np.mean(d**2)))


def phm08_score(predicted, true) -> float:
    """PHM08: late predictions (d > 0) cost more than early ones."""
    d = np.asarray(predicted, float) - np.asarray(true, float)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1)))


# the six operating regimes C-MAPSS FD002 / FD004 fly (altitude kft, Mach, throttle resolver angle)
CMAPSS_REGIMES = np.array(
    [[0, 0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60], [35, 0.84, 100], [42, 0.84, 100]]
)


def condition_keys(settings: np.ndarray) -> np.ndarray:
    """Operating-condition label of each row: the settings rounded to their regime grid (C-MAPSS flies
    six regimes in FD002/FD004 and one in FD001/FD003; setting noise is far below the rounding)."""
    rounded = np.column_stack(
        [np.round(settings[:, 0]), np.round(settings[:, 1], 2), np.round(settings[:, 2])]
    )
    return np.array([f"{a:g}/{b:g}/{c:g}" for a, b, c in rounded + 0.0])


def protocol_weights(units: np.ndarray, cycles: np.ndarray, remaining: np.ndarray, min_history: int):
    """Row weights that turn an out-of-fold score over all training cycles into the test protocol's:
    a test engine is a training engine cut at a random cycle (at least `min_history` cycles seen, at
    least one cycle left) and only its last cycle is scored. Every admissible cut of an engine gets
    the same weight and every engine the same total (the expectation over uniform cuts, without the
    noise of drawing them); an engine too short for `min_history` keeps all its cuts."""
    weights = np.zeros(units.shape[0])
    for unit in np.unique(units):
        rows = units == unit
        cut = rows & (remaining >= 1) & (cycles >= min_history)
        if not cut.any():
            cut = rows & (remaining >= 1)
        if cut.any():
            weights[cut] = 1.0 / cut.sum()
    return weights


def protocol_rmse(predicted, remaining, weights, cap: float | None = None) -> float:
    """Weighted RMSE against the true RUL (uncapped, as `evaluate`'s `rmse`; `cap`: capped at it)."""
    truth = np.asarray(remaining, float)
    if cap is not None:
        truth = np.minimum(truth, cap)
    d = np.asarray(predicted, float) - truth
    return float(np.sqrt(np.sum(weights * d**2) / np.sum(weights)))


def tail_average(
    predicted, units, cycles, length: int, decay: float = 0.0, cap: float = 125.0, plateau: float = -1.0
) -> np.ndarray:
    """Test-time averaging over an engine's last `length` rows: the estimate at cycle t is
    sum_j w_j * (pred(t_j) - (t - t_j)) over the row itself and the `length` - 1 rows before it (fewer
    where the engine has fewer), each earlier prediction aged by the cycles since (each was made from
    the history up to its own cycle, so the estimate only looks back), clipped to [0, cap]. Weights
    w_j proportional to (1 - decay)^j (0: uniform), renormalised over the rows taken. `plateau` >= 0:
    an earlier row whose prediction is at or above cap - plateau is left out (at the cap a prediction
    is only a lower bound, and ageing it would bias the estimate low); the row itself is always taken.
    Rows may come in any order; length 1 returns the clipped predictions."""
    predicted = np.asarray(predicted, float)
    if length <= 1:
        return np.clip(predicted, 0, cap)
    units, cycles = np.asarray(units), np.asarray(cycles, float)
    order = np.lexsort((cycles, units))
    p, u, c = predicted[order], units[order], cycles[order]
    total, weight = p.copy(), np.ones_like(p)
    for j in range(1, length):
        same = np.zeros(p.shape, bool)
        same[j:] = u[j:] == u[:-j]
        earlier = np.zeros_like(p)
        earlier[j:] = p[:-j]
        age = np.zeros_like(p)
        age[j:] = c[j:] - c[:-j]
        take = same & ((earlier < cap - plateau) if plateau >= 0 else True)
        w = np.where(take, (1.0 - decay) ** j, 0.0)
        total += w * (earlier - age)
        weight += w
    out = np.empty_like(p)
    out[order] = np.clip(total / weight, 0, cap)
    return out


@dataclass
class RulConfig:
    cap: float = 125.0  # predictions are clipped to it; the out-of-fold scores compare with the capped RUL
    # the models learn RUL capped at this knee (piecewise-linear target; > cap) and their predictions are
    # clipped to `cap`: 130 chosen on 5-fold out-of-fold RMSE over FD001's training engines among 125, 130,
    # 135, 140 (10.78, 10.62, 10.68, 10.70; docs/manufacturing.md); 0 = the cap
    knee: float = 130.0
    window: int = 30
    smoothing: float = 0.1  # exponential smoothing factor of the "level" feature
    # > 0: each unit's own baseline, the mean of its first `baseline_cycles` cycles (of those seen so far),
    # and the smoothed level's drift from it per sensor, for LightGBM and the networks alike: engines leave
    # the factory with different wear and manufacturing variation, and the drift from their own start is
    # the degradation without it. 40 chosen in session 26 on the out-of-fold protocol criterion over FD001's
    # training engines (LightGBM alone, capped truth: off 13.38, 10 10.84, 20 10.15, 30 9.97, 40 9.74,
    # 50 9.80, 75 10.09, 100 10.02; docs/manufacturing.md); 0 = off (models stored before it)
    baseline_cycles: int = 40
    long_smoothing: float = 0.0  # > 0: also a slower level (this factor) and the window's spread per sensor
    trees: int = 500
    learning_rate: float = 0.03
    leaves: int = 15
    members: int = 0  # bagged LightGBM members (different seeds); 0 = the fold models are the members
    folds: int = 5  # out-of-fold residuals for the uncertainty band
    band: float = 0.8  # central coverage of the band
    # what the band is calibrated on (out-of-fold residuals per predicted-RUL quintile): "protocol" (each
    # engine's admissible cuts weighted alike, as `protocol_rmse`, against the true RUL: the band of the
    # RUL itself, so a unit predicted at the cap, whose life the sensors cannot yet tell, gets an upper
    # bound far above it; session 26) or "all" (every cycle against the RUL capped at `cap`: a unit at the
    # cap got a band of almost no width, and 64% of FD001's test engines were inside the 80% band)
    band_criterion: str = "protocol"
    threads: int = 2
    seed: int = 0
    # the CNN: one network per fold, early stopping on the held-out fold (0 epochs = LightGBM only)
    network_epochs: int = 60
    network_patience: int = 12
    network_width: int = 16
    network_batch: int = 512
    network_smoothing: float = 0.1  # > 0: smoothed-level channels beside the raw window (factor)
    # one thread: on these small batches a second intra-op thread cost more CPU than it saved (measured
    # on a shared 2-core machine: 2.7 CPU-s per epoch with 2 threads and batch 256, 0.9 s with 1 and 512)
    network_threads: int = 1
    network_workers: int = 2  # networks trained side by side (threads of `network_threads` each)
    # networks per fold (different seeds), averaged: less variance per fold. 2, with a network window of
    # 40, chosen in session 9 on 5-fold out-of-fold RMSE over FD001's training engines; 4 in session 10 on
    # the protocol criterion (`protocol_rmse`, scripts/prognostics_selection.py, docs/manufacturing.md)
    network_seeds: int = 4
    network_average_from: int = 0  # > 0: weight averaging (SWA) of every epoch from this one on
    # index of the first network of each fold (its seed and architecture follow from the index): 3 with
    # network_seeds 3 trains exactly networks 3-5 of a network_seeds 6 run (scripts/prognostics_selection.py)
    network_first_index: int = 0
    # "cnn", "gru" or a comma list ("cnn,gru"): network s of each fold is the list's s-th (cyclically),
    # so network_seeds 2 with "cnn,gru" trains one CNN and one GRU per fold, averaged
    network_architecture: str = "cnn"
    network_window: int = 40  # cycles the network sees (0: `window`); 40 since session 9 (see network_seeds)
    network_learning_rate: float = 1e-3
    # the windows a fold's networks train on per epoch, all together: a fold trains network_seeds
    # networks, or fewer (at least one) when its windows times network_seeds exceed this, so a large
    # family's training costs about what FD001's does. 80,000 keeps FD001's four (a fold there trains on
    # 16-17 thousand windows); FD002 / FD004 (43-49 thousand) train one per fold: a stand-in of their size
    # took 548 s to train with four (scripts/cmapss_standin.py, docs/manufacturing.md). 0: no bound
    network_budget_windows: int = 80_000
    blend_step: float = 0.05  # grid of the CNN weight in the blend, chosen on out-of-fold predictions
    # what the blend weight minimises on the out-of-fold predictions: "protocol" (`protocol_rmse`: the
    # test protocol mirrored on the training engines: each engine truncated at every cycle from
    # `protocol_min_history` to one before failure, the last cycle scored against the true, uncapped
    # RUL, every engine weighted equally) or "all" (every cycle against the capped RUL; before session 10)
    blend_criterion: str = "protocol"
    protocol_min_history: int = 30
    # test-time averaging (`tail_average`): each row's RUL is the weighted mean of the last
    # `tail_average` rows' predictions, each aged by the cycles since; 1 = off. Applied after the blend,
    # in `predict_rows` and to the out-of-fold predictions the band is calibrated on
    tail_average: int = 1
    tail_decay: float = 0.0  # weights (1 - decay)^j over the rows j cycles back; 0 = uniform
    tail_plateau: float = -1.0  # >= 0: leave out earlier predictions at or above cap - plateau; < 0: none


@dataclass
class RulModel:
    config: RulConfig = field(default_factory=RulConfig)
    family: str = ""
    sensors: list[int] = field(default_factory=list)  # informative sensor columns (0-based of 21)
    norms: dict[str, list[list[float]]] = field(default_factory=dict)  # condition -> [mean, std]
    boosters: list[str] = field(default_factory=list)  # LightGBM model strings
    residual_bins: list[float] = field(default_factory=list)  # predicted-RUL bin edges
    residual_quantiles: list[list[float]] = field(default_factory=list)  # per bin [low, high]
    networks: list[dict] = field(default_factory=list)  # rul_network.encode_state of each CNN
    blend: float = 0.0  # weight of the CNN mean; 1 - blend goes to the LightGBM mean
    description: dict = field(default_factory=dict)

    # ---- features -------------------------------------------------------------------------------
    def _normalise(self, data: np.ndarray) -> np.ndarray:
        keys = condition_keys(data[:, 2:5])
        sensors = data[:, 5:]
        out = np.empty_like(sensors)
        known = list(self.norms)
        centres = np.array([[float(v) for v in k.split("/")] for k in known])
        for key in np.unique(keys):
            rows = keys == key
            if key not in self.norms:  # an unseen regime: use the nearest known one
                point = np.array([float(v) for v in key.split("/")])
                key = known[int(np.argmin(np.abs(centres - point).sum(axis=1)))]
            mean, std = (np.asarray(v) for v in self.norms[key])
            out[rows] = (sensors[rows] - mean) / std
        return out[:, self.sensors]

    def _features(self, data: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Features of every row from its unit's history up to that cycle, rows sorted by unit and
        cycle; returns (X, unit, cycle, z) with z the normalised sensors (the networks' input)."""
        order = np.lexsort((data[:, 1], data[:, 0]))
        data = data[order]
        z = self._normalise(data)
        w, alpha = self.config.window, self.config.smoothing
        blocks = []
        for unit in np.unique(data[:, 0]):
            rows = np.flatnonzero(data[:, 0] == unit)
            x = z[rows]
            n = x.shape[0]
            cum = np.vstack([np.zeros(x.shape[1]), np.cumsum(x, axis=0)])
            idx = np.arange(n)[:, None]
            icum = np.vstack([np.zeros(x.shape[1]), np.cumsum(x * idx, axis=0)])
            end = np.arange(1, n + 1)
            start = np.maximum(0, end - w)
            length = (end - start)[:, None]
            s = cum[end] - cum[start]
            si = icum[end] - icum[start]
            mean = s / length
            t_mean = ((start + end - 1) / 2)[:, None]
            t_var = ((length**2 - 1) / 12).astype(float)
            slope = np.where(t_var > 0, (si / length - t_mean * mean) / np.maximum(t_var, 1e-9), 0.0)
            level = np.empty_like(x)
            level[0] = x[0]
            for i in range(1, n):
                level[i] = alpha * x[i] + (1 - alpha) * level[i - 1]
            last5 = (cum[end] - cum[np.maximum(0, end - 5)]) / np.minimum(end, 5)[:, None]
            parts = [mean, slope * w, last5, level]
            if self.config.baseline_cycles > 0:
                parts.append(level - rul_network.baseline(cum, end, self.config.baseline_cycles))
            if self.config.long_smoothing > 0:
                beta = self.config.long_smoothing
                slow = np.empty_like(x)
                slow[0] = x[0]
                for i in range(1, n):
                    slow[i] = beta * x[i] + (1 - beta) * slow[i - 1]
                sq = np.vstack([np.zeros(x.shape[1]), np.cumsum(x**2, axis=0)])
                spread = np.sqrt(np.maximum((sq[end] - sq[start]) / length - mean**2, 0.0))
                parts += [slow, spread]
            blocks.append(np.hstack([*parts, end[:, None].astype(float)]))
        return np.vstack(blocks), data[:, 0], data[:, 1], z

    # ---- training ---------------------------------------------------------------------------------
    def _fit_normalisation(self, data: np.ndarray) -> None:
        keys = condition_keys(data[:, 2:5])
        self.norms = {}
        for key in np.unique(keys):
            part = data[keys == key, 5:]
            self.norms[key] = [part.mean(axis=0).tolist(), np.maximum(part.std(axis=0), 1e-9).tolist()]
        spread = np.vstack(
            [(data[keys == k, 5:] - np.asarray(m)) / np.asarray(s) for k, (m, s) in self.norms.items()]
        )
        raw_std = np.array([data[keys == k, 5:].std(axis=0) for k in self.norms]).max(axis=0)
        # informative sensors: they vary within a regime (constant ones carry no degradation signal)
        self.sensors = [int(i) for i in np.flatnonzero((raw_std > 1e-4) & (np.abs(spread).max(axis=0) > 0))]

    def _train_booster(self, X, y, seed: int):
        import lightgbm as lgb

        params = {
            "objective": "regression",
            "learning_rate": self.config.learning_rate,
            "num_leaves": self.config.leaves,
            "min_data_in_leaf": 40,
            "feature_fraction": 0.7,
            "bagging_fraction": 0.8,
            "bagging_freq": 1,
            "lambda_l2": 1.0,
            "num_threads": self.config.threads,
            "seed": seed,
            "verbose": -1,
        }
        return lgb.train(params, lgb.Dataset(X, y), num_boost_round=self.config.trees)

    def _architecture(self, index: int) -> str:
        """Architecture of network `index` (0-based) of a fold."""
        names = [name.strip() for name in self.config.network_architecture.split(",")]
        return names[index % len(names)]

    def _train_network(self, W, y, W_val, y_val, seed: int, architecture: str = "") -> dict:
        config = self.config
        return rul_network.train_member(
            W, y, W_val, y_val, cap=config.cap, seed=seed, epochs=config.network_epochs,
            patience=config.network_patience, width=config.network_width, batch=config.network_batch,
            threads=config.network_threads, learning_rate=config.network_learning_rate,
            average_from=config.network_average_from, architecture=architecture or self._architecture(0),
        )  # fmt: skip

    def _networks_per_fold(self, fold_windows: int) -> int:
        """network_seeds, or fewer (at least 1) where a fold's `fold_windows` times network_seeds
        exceed network_budget_windows (every fold trains as many as the largest fold may)."""
        config = self.config
        seeds = max(config.network_seeds, 1)
        if config.network_budget_windows <= 0 or fold_windows <= 0:
            return seeds
        return int(max(1, min(seeds, config.network_budget_windows // int(fold_windows))))

    def _windows(self, z, units, cycles) -> np.ndarray:
        config = self.config
        window = config.network_window or config.window
        return rul_network.windows(
            z, units, cycles, window, config.network_smoothing, baseline_cycles=config.baseline_cycles
        )

    def fit(self, data: np.ndarray, family: str = "", source: str = "") -> RulModel:
        started = time.perf_counter()
        config = self.config
        self.__dict__.pop("_runtime", None)  # boosters and networks built for an earlier fit
        self.family = family
        self._fit_normalisation(data)
        X, units, cycles, z = self._features(data)
        life = {u: cycles[units == u].max() for u in np.unique(units)}
        remaining = np.array([life[u] for u in units]) - cycles
        y = np.minimum(remaining, config.cap)  # what the predictions are scored against
        target = np.minimum(remaining, max(config.knee, config.cap))  # what the models learn
        use_networks = config.network_epochs > 0
        W = self._windows(z, units, cycles) if use_networks else None

        # folds by engine: out-of-fold predictions choose the blend and calibrate the band; each fold's
        # network is also a member of the final ensemble (stopped early on the engines it did not see)
        unique = np.unique(units)
        rng = np.random.default_rng(config.seed)
        folds_n = config.folds if config.folds >= 2 else 0
        fold_of = dict(zip(rng.permutation(unique), np.arange(unique.size) % max(folds_n, 1), strict=True))
        folds = np.array([fold_of[u] for u in units])
        oof_trees, oof_nets = np.empty_like(y), np.empty_like(y)
        self.networks, network_runs, fold_boosters = [], [], []
        for k in range(folds_n):
            train, held = folds != k, folds == k
            booster = self._train_booster(X[train], target[train], config.seed + 100 + k)
            oof_trees[held] = booster.predict(X[held])
            fold_boosters.append(booster)

        def fold_network(job: tuple[int, int]) -> tuple[dict, np.ndarray]:
            k, s = job
            train, held = folds != k, folds == k
            architecture = self._architecture(s)
            run = self._train_network(
                W[train], target[train], W[held], y[held], config.seed + 200 + k + 1000 * s, architecture
            )
            return run, rul_network.predict_member(
                run["state"], W[held], cap=config.cap, width=config.network_width,
                threads=config.network_threads, architecture=architecture,
            )  # fmt: skip

        oof_each: list[np.ndarray] = []
        per_fold = self._networks_per_fold(max((folds != k).sum() for k in range(folds_n)) if folds_n else 0)
        if use_networks and folds_n:
            first = config.network_first_index
            jobs = [(k, s) for k in range(folds_n) for s in range(first, first + per_fold)]
            # side by side in threads (torch releases the GIL in its kernels; each network draws from
            # its own generator, so the result does not depend on the number of workers)
            with ThreadPoolExecutor(max_workers=max(config.network_workers, 1)) as pool:
                results = list(pool.map(fold_network, jobs))
            # each network index's own out-of-fold predictions (in memory only: the selection script
            # scores fewer networks per fold, or a mix, from one run)
            oof_each = [np.empty_like(y) for _ in range(per_fold)]
            for k in range(folds_n):
                held_predictions = []
                for (fold, s), (run, predicted) in zip(jobs, results, strict=True):
                    if fold == k:
                        held_predictions.append(predicted)
                        oof_each[s - first][folds == k] = predicted
                        self.networks.append(rul_network.encode_state(run.pop("state")))
                        network_runs.append(run)
                oof_nets[folds == k] = np.mean(held_predictions, axis=0)
        # members 0: the fold boosters are the ensemble (each saw all but one fold; no refit on everything)
        members = [
            self._train_booster(X, target, config.seed + m) for m in range(config.members)
        ] or fold_boosters
        if not members:
            raise ValueError("no LightGBM member: give members >= 1 or folds >= 2")
        self.boosters = [booster.model_to_string() for booster in members]
        if use_networks and not folds_n:  # no folds: one network on everything, a fixed number of epochs
            run = self._train_network(W, target, W[:0], y[:0], config.seed + 200)
            self.networks.append(rul_network.encode_state(run.pop("state")))
            network_runs.append(run)
        if not folds_n:  # no calibration folds: in-sample predictions (an optimistic band and blend)
            oof_trees = self._tree_predictions(X)
            oof_nets = self._network_predictions(W) if use_networks else oof_trees
        oof_trees, oof_nets = np.clip(oof_trees, 0, config.cap), np.clip(oof_nets, 0, config.cap)
        weights = protocol_weights(units, cycles, remaining, config.protocol_min_history)
        if config.blend_criterion == "protocol":
            truth, blend_weights = remaining, weights
        else:
            truth, blend_weights = y, np.ones_like(y)
        self.blend = self._choose_blend(oof_trees, oof_nets, truth, blend_weights) if use_networks else 0.0
        single = (1 - self.blend) * oof_trees + self.blend * oof_nets
        # the out-of-fold rows of an engine all come from the fold models that did not see it, so
        # averaging them gives what `predict_rows` gives a new engine; the band is calibrated on them
        oof = self._tail(single, units, cycles)
        if config.band_criterion == "protocol":
            self._calibrate(oof, remaining, weights)
        else:
            self._calibrate(oof, y)
        # kept in memory only (not stored): planning chooses its margin on these, never on test units
        self.training_oof = {
            "unit": units, "cycle": cycles, "rul": oof, "true": y, "lightgbm": oof_trees, "network": oof_nets,
            "remaining": remaining, "protocol_weights": weights,
            "networks": oof_each, "single_window": single,
        }  # fmt: skip
        self.description = {
            "family": family,
            "source": source,
            "units": int(unique.size),
            "rows": int(data.shape[0]),
            "operating_conditions": len(self.norms),
            "normalisation": "sensors z-scored per operating condition (settings rounded to the regime grid)",
            "sensors_used": [f"sensor{i + 1}" for i in self.sensors],
            "features": f"per sensor over the last {config.window} cycles: mean, slope, mean of last 5, "
            "smoothed level"
            + (
                f", its drift from the unit's own baseline (the mean of its first {config.baseline_cycles} "
                "cycles: a unit's history is taken to start when it entered service or was overhauled)"
                if config.baseline_cycles
                else ""
            )
            + "; cycle",
            "target": f"RUL capped at {config.cap:g} cycles"
            + (f" (learnt with its plateau at {config.knee:g})" if config.knee > config.cap else ""),
            "model": f"LightGBM x{len(self.boosters)}, {config.trees} trees, {config.leaves} leaves"
            + (
                f"; {self._network_names()} "
                f"on the last {config.network_window or config.window} normalised cycles"
                + (
                    f" (weights averaged from epoch {config.network_average_from})"
                    if config.network_average_from
                    else ""
                )
                + f", blend weight {self.blend:g} chosen on out-of-fold predictions"
                if use_networks
                else ""
            ),
            "networks": network_runs,
            "networks_per_fold": per_fold if use_networks and folds_n else 0,
            "tail_average": (
                f"RUL averaged over the last {config.tail_average} rows' predictions, each aged by the "
                f"cycles since (weights (1 - {config.tail_decay:g})^j"
                + (
                    f", rows predicted at or above {config.cap - config.tail_plateau:g} left out"
                    if config.tail_plateau >= 0
                    else ""
                )
                + ")"
                if config.tail_average > 1
                else "off: the last row's prediction"
            ),
            "band": f"{config.band:.0%} central band from {config.folds}-fold out-of-fold residuals",
            "oof_rmse": round(rmse(oof, y), 3),
            "oof_rmse_lightgbm": round(rmse(oof_trees, y), 3),
            "oof_rmse_cnn": round(rmse(oof_nets, y), 3) if use_networks else None,
            # the test protocol mirrored on the training engines (`protocol_rmse`): uncapped truth as
            # `evaluate`'s rmse, and capped as its rmse_capped_truth
            "oof_rmse_protocol": round(protocol_rmse(oof, remaining, weights), 3),
            "oof_rmse_protocol_capped_truth": round(protocol_rmse(oof, remaining, weights, config.cap), 3),
            # the same without the tail averaging (the last row's prediction alone)
            "oof_rmse_protocol_single_window": round(protocol_rmse(single, remaining, weights), 3),
            "oof_rmse_protocol_capped_truth_single_window": round(
                protocol_rmse(single, remaining, weights, config.cap), 3
            ),
            "blend_criterion": config.blend_criterion,
            "train_seconds": round(time.perf_counter() - started, 2),
            "config": asdict(config),
        }
        return self

    def _tail(self, predicted: np.ndarray, units: np.ndarray, cycles: np.ndarray) -> np.ndarray:
        config = self.config
        return tail_average(
            predicted, units, cycles, config.tail_average, config.tail_decay, config.cap, config.tail_plateau
        )

    def _network_names(self) -> str:
        """The stored networks in words: 1-D CNN x5, GRU x5 or 1-D CNN x5 + GRU x5."""
        counts: dict[str, int] = {}
        for state in self.networks:
            name = rul_network.architecture_of(state)
            counts[name] = counts.get(name, 0) + 1
        label = {"cnn": "1-D CNN", "gru": "GRU"}
        return " + ".join(f"{label[name]} x{count}" for name, count in counts.items())

    def _choose_blend(self, trees: np.ndarray, nets: np.ndarray, y: np.ndarray, weights=None) -> float:
        """The CNN weight with the lowest (row-weighted) out-of-fold RMSE (ties to the smaller weight)."""
        grid = np.round(np.arange(0, 1 + 1e-9, self.config.blend_step), 4)
        weights = np.ones_like(y) if weights is None else weights
        errors = [protocol_rmse((1 - w) * trees + w * nets, y, weights) for w in grid]
        return float(grid[int(np.argmin(errors))])

    def _calibrate(self, predicted: np.ndarray, true: np.ndarray, weights: np.ndarray | None = None) -> None:
        """The band: per quintile of the predicted RUL, the central `band` of the residuals (true -
        predicted), each row counted with its weight (None: alike)."""
        weights = np.ones_like(predicted) if weights is None else np.asarray(weights, float)
        edges = np.array(
            [-np.inf, *(_weighted_quantile(predicted, q, weights) for q in (0.2, 0.4, 0.6, 0.8))]
        )
        edges = np.append(edges, np.inf)
        low_q, high_q = (1 - self.config.band) / 2, 1 - (1 - self.config.band) / 2
        self.residual_bins = [float(e) for e in edges[1:-1]]
        self.residual_quantiles = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            inside = (predicted >= lo) & (predicted < hi) & (weights > 0)
            if not inside.any():
                inside = weights > 0
            residual, weight = true[inside] - predicted[inside], weights[inside]
            self.residual_quantiles.append(
                [_weighted_quantile(residual, low_q, weight), _weighted_quantile(residual, high_q, weight)]
            )

    # ---- prediction ---------------------------------------------------------------------------------
    def _loaded(self) -> dict:
        """The LightGBM boosters and networks built from their stored form once per model (a renewal
        then parses none of the 10 MB blob's trees or weights again); not a field, so never stored."""
        loaded = self.__dict__.get("_runtime")
        if loaded is None:
            import lightgbm as lgb

            loaded = {"boosters": [lgb.Booster(model_str=b) for b in self.boosters], "networks": {}}
            self.__dict__["_runtime"] = loaded
        return loaded

    def _tree_predictions(self, X: np.ndarray) -> np.ndarray:
        return np.mean([booster.predict(X) for booster in self._loaded()["boosters"]], axis=0)

    def _network_predictions(self, W: np.ndarray) -> np.ndarray:
        config = self.config
        built = self._loaded()["networks"]
        shape = (W.shape[1], W.shape[2])
        if shape not in built:  # the architecture is read from each network's weights
            built[shape] = [
                rul_network.load_member(rul_network.decode_state(state), *shape, width=config.network_width)
                for state in self.networks
            ]
        return np.mean(
            [
                rul_network.predict_loaded(net, W, cap=config.cap, threads=config.network_threads)
                for net in built[shape]
            ],
            axis=0,
        )

    def predict_rows(self, data: np.ndarray, last: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RUL of every row (sorted by unit and cycle), with its unit and cycle. `last` > 0: only each
        unit's last `last` rows are predicted and returned (their features still come from the whole
        history), which is all `predict` needs: a renewal of a long-lived unit then costs one row per
        network, not its whole history."""
        if not self.boosters:
            raise ValueError("the model is not trained")
        X, units, cycles, z = self._features(data)
        keep = _last_rows(units, last) if last > 0 else np.ones(units.size, bool)
        preds = self._tree_predictions(X[keep])
        if self.networks and self.blend > 0:
            W = self._windows(z, units, cycles)[keep]
            preds = (1 - self.blend) * np.clip(
                preds, 0, self.config.cap
            ) + self.blend * self._network_predictions(W)
        units, cycles = units[keep], cycles[keep]
        return self._tail(np.clip(preds, 0, self.config.cap), units, cycles), units, cycles

    def predict(self, data: np.ndarray) -> list[dict]:
        """RUL with its band at the last cycle of each unit in `data`."""
        preds, units, cycles = self.predict_rows(data, last=max(self.config.tail_average, 1))
        out = []
        for unit in np.unique(units):
            i = np.flatnonzero(units == unit)[-1]
            low, high = self.residual_quantiles[
                int(np.searchsorted(self.residual_bins, preds[i], side="right"))
            ]
            rul = float(preds[i])
            out.append(
                {
                    "unit": int(unit),
                    "cycle": int(cycles[i]),
                    "rul": rul,
                    "lower": max(0.0, min(rul, rul + low)),
                    "upper": max(rul, rul + high),
                }
            )
        return out

    # ---- storage (JSON, no pickle: a stored blob can never execute code) ----------------------------
    def to_bytes(self) -> bytes:
        payload = asdict(self)
        payload["format"] = FORMAT_VERSION
        return base64.b85encode(json.dumps(payload).encode())

    @classmethod
    def from_bytes(cls, blob: bytes) -> RulModel:
        try:
            payload = json.loads(base64.b85decode(bytes(blob)))
        except (ValueError, TypeError) as error:
            raise ValueError(f"not a stored RUL model: {error}") from None
        if payload.pop("format", None) not in (1, FORMAT_VERSION):
            raise ValueError("stored RUL model has an unknown format version")
        # options added after a blob was stored take the value that blob was trained with (off)
        payload["config"] = RulConfig(**(OPTIONS_BEFORE_THEY_EXISTED | payload["config"]))
        return cls(**payload)


def _weighted_quantile(values: np.ndarray, q: float, weights: np.ndarray) -> float:
    """The q-quantile of `values` each counted with its weight (with equal weights, numpy's default
    linear interpolation between order statistics)."""
    order = np.argsort(values, kind="stable")
    values, weights = np.asarray(values, float)[order], np.asarray(weights, float)[order]
    if values.size == 1:
        return float(values[0])
    cumulative = np.cumsum(weights)
    # each value at the end of its weight's stretch, scaled so the first sits at 0 and the last at 1
    positions = (cumulative - weights[0]) / max(cumulative[-1] - weights[0], 1e-12)
    return float(np.interp(q, positions, values))


def _last_rows(units: np.ndarray, count: int) -> np.ndarray:
    """Mask of each unit's last `count` rows (rows sorted by unit)."""
    index = np.arange(units.size)
    ends = np.append(np.flatnonzero(units[1:] != units[:-1]), units.size - 1)
    return ends[np.searchsorted(ends, index)] - index < count


def evaluate(train_path, test_path, rul_path, config: RulConfig | None = None) -> dict:
    """The standard protocol: train on the train file, predict at each test engine's last cycle."""
    train = read_cmapss(train_path)
    test = read_cmapss(test_path)
    true = read_rul(rul_path)
    started = time.perf_counter()
    model = RulModel(config or RulConfig()).fit(train, source=str(train_path))
    train_seconds = time.perf_counter() - started
    predictions = model.predict(test)
    if len(predictions) != true.size:
        raise ValueError(f"{test_path} has {len(predictions)} engines but {rul_path} has {true.size} RULs")
    predicted = np.array([p["rul"] for p in predictions])
    covered = np.mean([p["lower"] <= t <= p["upper"] for p, t in zip(predictions, true, strict=True)])
    return {
        "train": str(train_path),
        "test": str(test_path),
        "engines": int(true.size),
        "rmse": round(rmse(predicted, true), 3),
        # For comparison with papers that also cap the test engines' true RUL (true RUL 7-145 on
        # FD001, predictions capped at `cap`): reported beside `rmse`, never in its place.
        "rmse_capped_truth": round(rmse(predicted, np.minimum(true, model.config.cap)), 3),
        "phm08_score": round(phm08_score(predicted, true), 1),
        "train_seconds": round(train_seconds, 2),
        "band_coverage": round(float(covered), 3),
        "band_width_mean": round(float(np.mean([p["upper"] - p["lower"] for p in predictions])), 2),
        "cap": model.config.cap,
        "description": model.description,
        "predictions": predictions,
        "_model": model,
    }
