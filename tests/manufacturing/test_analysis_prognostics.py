"""Prognostics on C-MAPSS FD001 with a reduced budget (sanity bound), storage, train_prognostics."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.models import Event
from manufacturing.analysis import rul_network
from manufacturing.analysis.prognostics import (
    CMAPSS_REGIMES,
    RulConfig,
    RulModel,
    phm08_score,
    protocol_rmse,
    protocol_weights,
    read_cmapss,
    rmse,
    tail_average,
)
from manufacturing.models import ConditionRecord, RulModelVersion, RulPrediction
from tests.manufacturing.budgets import TINY

CMAPSS = Path(settings.SHARED_DATA_DIR) / "cmapss"
SMALL = ["--trees", "60", "--members", "1", "--folds", "0", "--network-epochs", "3"]


def test_scores_follow_the_protocol():
    assert rmse([10, 20], [13, 16]) == pytest.approx(np.sqrt((9 + 16) / 2))
    # late by 10 costs e - 1, early by 13 costs e - 1
    assert phm08_score([30, 7], [20, 20]) == pytest.approx(2 * (np.e - 1))


def test_eval_prognostics_on_fd001_with_a_small_budget(capsys):
    call_command("eval_prognostics", "--json", *SMALL)
    report = json.loads(capsys.readouterr().out)
    assert report["engines"] == 100
    assert report["rmse"] < 22.0  # a constant mean-RUL guess scores about 41; the full recipe 11.7
    assert report["phm08_score"] > 0 and report["train_seconds"] > 0
    assert 0.3 <= report["band_coverage"] <= 1.0


def test_model_round_trips_through_bytes_and_bands_hold_the_prediction():
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 10]
    config = RulConfig(trees=20, members=1, folds=2, network_epochs=2, network_seeds=1)
    model = RulModel(config).fit(data, family="turbofan")
    restored = RulModel.from_bytes(model.to_bytes())
    first, again = model.predict(data), restored.predict(data)
    assert first == again and len(first) == 10
    # `predict` runs the models on each unit's last row only; its RUL is that row's among all rows'
    rows, units, _ = model.predict_rows(data)
    last = [rows[np.flatnonzero(units == unit)[-1]] for unit in np.unique(units)]
    assert [p["rul"] for p in first] == pytest.approx(last, abs=1e-4)
    assert model.predict_rows(data, last=3)[0].size == 30
    # the boosters and networks built for predicting are kept for the next call, never stored
    assert "_runtime" in model.__dict__ and model.to_bytes() == restored.to_bytes()
    refit = RulModel.from_bytes(model.to_bytes())
    refit.predict(data)
    refit.fit(data[data[:, 0] <= 5])  # a new fit builds its own
    assert "_runtime" not in refit.__dict__ and refit.description["units"] == 5
    assert all(p["lower"] <= p["rul"] <= p["upper"] for p in first)
    early = model.predict(data[data[:, 1] <= 30])  # the same engines 30 cycles into their lives
    assert np.mean([p["rul"] for p in first]) < np.mean([p["rul"] for p in early]) - 10
    assert model.description["units"] == 10 and model.description["operating_conditions"] == 1
    assert len(restored.networks) == 2 and 0 <= restored.blend <= 1  # one CNN per fold, weights in JSON
    with pytest.raises(ValueError, match="not a stored RUL model"):
        RulModel.from_bytes(b"\x00garbage")


def test_long_memory_features_and_blobs_stored_before_them():
    """--long-smoothing adds a slower level and the window's spread per sensor (2 more features per
    sensor), the baseline (the default) the level's drift from the unit's own start (1 more); a blob
    stored before the options existed loads with them off, so its features stay the same."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 6]
    small = dict(trees=10, members=1, folds=2, network_epochs=0)
    plain = RulModel(RulConfig(**small, baseline_cycles=0)).fit(data)
    longer = RulModel(RulConfig(**small, baseline_cycles=0, long_smoothing=0.03)).fit(data)
    drift = RulModel(RulConfig(**small)).fit(data)
    sensors = len(plain.sensors)
    assert plain._features(data)[0].shape[1] == 4 * sensors + 1
    assert longer._features(data)[0].shape[1] == 6 * sensors + 1
    assert drift.config.baseline_cycles == 40 and drift._features(data)[0].shape[1] == 5 * sensors + 1
    payload = json.loads(base64.b85decode(plain.to_bytes()))
    for option in (
        "long_smoothing",
        "network_seeds",
        "baseline_cycles",
        "band_criterion",
    ):  # as stored before
        del payload["config"][option]
    old = RulModel.from_bytes(base64.b85encode(json.dumps(payload).encode()))
    assert old.config.long_smoothing == 0.0 and old.config.baseline_cycles == 0
    assert old.config.band_criterion == "all"
    assert old.predict(data) == plain.predict(data)


def test_the_drift_from_a_units_own_baseline_removes_its_offset_and_only_looks_back():
    """Two engines with the same degradation, one leaving the factory with every sensor 0.8 of a spread
    higher: their levels differ by that offset throughout, their drifts from their own first 40 cycles
    not at all. A row's drift is the same whether the later cycles exist or not (no look-ahead), and
    the networks get it as channels of their window."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    one = data[data[:, 0] == 1].copy()
    model = RulModel(RulConfig(trees=10, members=1, folds=2, network_epochs=0)).fit(data[data[:, 0] <= 6])
    spread = np.asarray(model.norms[next(iter(model.norms))][1])
    twin = one.copy()
    twin[:, 0] = 2
    twin[:, 5:] += 0.8 * spread
    X, units, cycles, z = model._features(np.vstack([one, twin]))
    sensors = len(model.sensors)
    level, drift = (slice(k * sensors, (k + 1) * sensors) for k in (3, 4))
    first, second = units == 1, units == 2
    assert np.allclose(X[second][:, level] - X[first][:, level], 0.8)
    assert np.allclose(X[second][:, drift], X[first][:, drift], atol=1e-9)
    assert np.abs(X[first][-1, drift]).max() > 1.0  # the engine's last cycles: far from its start
    early = model._features(one[one[:, 1] <= 60])[0]
    assert np.allclose(early, X[first][:60])
    windows = rul_network.windows(z, units, cycles, 40, 0.1, baseline_cycles=40)
    assert windows.shape[1] == 3 * sensors + 1
    assert np.allclose(
        windows[second][:, 2 * sensors : 3 * sensors], windows[first][:, 2 * sensors : 3 * sensors]
    )


def test_networks_side_by_side_weight_averaging_gru_and_knee():
    """Networks trained in two threads equal those trained one after the other (each has its own
    generator); weight averaging (SWA) and the GRU train, store and predict; a knee above the cap
    is learnt but the predictions stay within the cap."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 6]
    base = dict(
        trees=10, members=0, folds=2, network_epochs=3, network_seeds=2, network_average_from=2, knee=140.0
    )
    one = RulModel(RulConfig(**base, network_workers=1)).fit(data)
    two = RulModel(RulConfig(**base, network_workers=2)).fit(data)
    assert one.networks == two.networks and one.predict(data) == two.predict(data)
    assert (
        "averaged from epoch 2" in one.description["model"] and "plateau at 140" in one.description["target"]
    )
    rows = one.predict_rows(data)[0]
    assert rows.max() <= 125.0 and one.training_oof["lightgbm"].max() <= 125.0
    gru_config = RulConfig(
        trees=10, members=0, folds=2, network_epochs=2, network_seeds=1, network_architecture="gru"
    )
    gru = RulModel(gru_config).fit(data)
    _, units, cycles, z = gru._features(data)
    windows = gru._windows(z, units, cycles)
    restored = RulModel.from_bytes(gru.to_bytes())
    assert np.array_equal(restored._network_predictions(windows), gru._network_predictions(windows))
    assert "GRU x2" in gru.description["model"]


def test_a_networks_weights_owe_nothing_to_torchs_global_generator():
    """Another thread drawing from torch's global generator while a network trains (the LLM layer's
    sampling `generate` thread in the same process) changes nothing: the initial weights come from the
    network's own generator, and are those torch's default initialisation gives with the same seed (the
    FD001 figures do not move). Building a network for stored weights draws nothing either."""
    import threading

    import torch

    for architecture in ("cnn", "gru"):
        torch.manual_seed(11)
        default = rul_network._architecture(5, 8, 4, architecture, None).state_dict()
        torch.manual_seed(0)
        before = torch.get_rng_state()
        own = rul_network._network(5, 8, 4, architecture, None, seed=11).state_dict()
        assert torch.equal(before, torch.get_rng_state())  # nothing drawn from the global generator
        assert default.keys() == own.keys()
        assert all(torch.equal(default[name], own[name]) for name in default)
        rul_network.load_member({k: v.numpy() for k, v in own.items()}, 5, 8, width=4)
        assert torch.equal(before, torch.get_rng_state())

    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(64, 5, 8)).astype(np.float32), rng.uniform(0, 125, 64)
    train = dict(cap=125.0, seed=5, epochs=2, patience=5, width=4, threads=1)
    alone = rul_network.train_member(X, y, X[:8], y[:8], **train)["state"]
    stop = threading.Event()

    def draw() -> None:  # as a sampling generate() does, and as often as it can
        while not stop.is_set():
            torch.rand(64)
            torch.manual_seed(int(torch.randint(0, 2**31, (1,))))

    drawing = threading.Thread(target=draw, daemon=True)
    drawing.start()
    try:
        beside = [rul_network.train_member(X, y, X[:8], y[:8], **train)["state"] for _ in range(5)]
    finally:
        stop.set()
        drawing.join()
    assert all(np.array_equal(alone[name], run[name]) for run in beside for name in alone)


def test_a_large_family_trains_fewer_networks_per_fold():
    """network_budget_windows bounds the windows a fold's networks train on per epoch, all together:
    within it every fold trains network_seeds networks (FD001: 16-17 thousand windows a fold, four
    networks, 80,000); beyond it fewer, at least one, the same number in every fold."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 6]  # about 600 windows a fold
    base = dict(trees=10, members=0, folds=2, network_epochs=2, network_seeds=3)
    unbounded = RulModel(RulConfig(**base, network_budget_windows=0)).fit(data)
    within = RulModel(RulConfig(**base, network_budget_windows=10_000)).fit(data)
    assert within.networks == unbounded.networks and within.description["networks_per_fold"] == 3
    two = RulModel(RulConfig(**base, network_budget_windows=1_500)).fit(data)
    assert two.description["networks_per_fold"] == 2 and len(two.networks) == 4
    json.dumps(two.description)  # plain numbers, as eval_prognostics --json prints them
    # the first two networks of each fold are those the unbounded model trained
    assert two.networks == unbounded.networks[0:2] + unbounded.networks[3:5]
    one = RulModel(RulConfig(**base, network_budget_windows=10)).fit(data)
    assert one.description["networks_per_fold"] == 1 and "1-D CNN x2" in one.description["model"]
    assert RulConfig().network_budget_windows == 80_000
    fd001_fold = int(0.8 * read_cmapss(CMAPSS / "train_FD001.txt").shape[0]) + 500  # the largest
    assert RulModel(RulConfig())._networks_per_fold(fd001_fold) == RulConfig().network_seeds == 4
    with pytest.raises(CommandError, match="--network-budget-windows cannot be negative"):
        call_command("eval_prognostics", "--network-budget-windows", "-1", *SMALL)


def test_a_fold_can_mix_a_cnn_and_a_gru():
    """network_architecture "cnn,gru" with two networks per fold trains one of each per fold; each stored
    network is rebuilt from its own weights' names, so the blob predicts the same after a round trip."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 6]
    config = RulConfig(trees=10, folds=2, network_epochs=2, network_seeds=2, network_architecture="cnn,gru")
    model = RulModel(config).fit(data)
    assert [rul_network.architecture_of(state) for state in model.networks] == ["cnn", "gru"] * 2
    assert "1-D CNN x2 + GRU x2" in model.description["model"]
    assert RulModel.from_bytes(model.to_bytes()).predict(data) == model.predict(data)
    with pytest.raises(CommandError, match="cnn, gru or a comma list"):
        call_command("eval_prognostics", "--network-architecture", "cnn,lstm", *SMALL)


def test_protocol_criterion_weights_every_cut_of_an_engine_alike():
    """The test protocol on training engines: an engine cut at every cycle from `min_history` seen to
    one before failure, engines weighted equally, truth uncapped (or capped, as rmse_capped_truth)."""
    units = np.repeat([1, 2, 3], [50, 40, 10])
    cycles = np.concatenate([np.arange(1, 51), np.arange(1, 41), np.arange(1, 11)])
    remaining = np.concatenate([49 - np.arange(50), 39 - np.arange(40), 9 - np.arange(10)])
    weights = protocol_weights(units, cycles, remaining, min_history=30)
    # engine 1: cuts at cycles 30-49 (20), engine 2: 30-39 (10), engine 3 is too short: cuts 1-9
    assert (weights > 0).sum() == 20 + 10 + 9 and weights[remaining == 0].sum() == 0
    assert [weights[units == u].sum() for u in (1, 2, 3)] == pytest.approx([1, 1, 1])
    predicted = np.full(remaining.shape, 5.0)
    by_engine = [np.mean((5 - remaining[(units == u) & (weights > 0)]) ** 2) for u in (1, 2, 3)]
    assert protocol_rmse(predicted, remaining, weights) == pytest.approx(np.sqrt(np.mean(by_engine)))
    capped = [np.mean((5 - np.minimum(remaining[(units == u) & (weights > 0)], 8)) ** 2) for u in (1, 2, 3)]
    assert protocol_rmse(predicted, remaining, weights, cap=8) == pytest.approx(np.sqrt(np.mean(capped)))


def test_blend_criterion_and_each_networks_out_of_fold_predictions():
    """The blend weight is the grid point with the lowest protocol RMSE (or all-cycle RMSE); each
    network index keeps its own out-of-fold predictions, whose mean is the networks' out-of-fold."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 6]
    base = dict(trees=10, folds=2, network_epochs=2, network_seeds=2)
    model = RulModel(RulConfig(**base, blend_criterion="protocol")).fit(data)
    oof = model.training_oof
    assert len(oof["networks"]) == 2
    assert np.allclose(np.mean(oof["networks"], axis=0), oof["network"])
    trees, nets, truth, weights = oof["lightgbm"], oof["network"], oof["remaining"], oof["protocol_weights"]
    grid = np.round(np.arange(0, 1.0001, 0.05), 4)
    errors = [protocol_rmse((1 - w) * trees + w * nets, truth, weights) for w in grid]
    assert model.blend == grid[int(np.argmin(errors))]
    assert model.description["oof_rmse_protocol"] == pytest.approx(min(errors), abs=1e-3)
    plain = RulModel(RulConfig(**base, blend_criterion="all")).fit(data)
    oof = plain.training_oof
    trees, nets = oof["lightgbm"], oof["network"]
    errors = [rmse((1 - w) * trees + w * nets, oof["true"]) for w in grid]
    assert plain.blend == grid[int(np.argmin(errors))]
    assert RulModel.from_bytes(model.to_bytes()).config.blend_criterion == "protocol"
    with pytest.raises(CommandError, match="invalid choice"):
        call_command("eval_prognostics", "--blend-criterion", "test", *SMALL)


def test_tail_average_ages_earlier_predictions_and_only_looks_back():
    """Each row's estimate is the weighted mean of its own and the earlier rows' predictions, each
    minus the cycles since; an engine's first rows take what they have; rows may come shuffled."""
    units = np.array([1, 1, 1, 1, 2, 2])
    cycles = np.array([1, 2, 3, 5, 1, 2])  # a gap: cycle 5 follows cycle 3
    predicted = np.array([50.0, 47.0, 49.0, 44.0, 130.0, 20.0])
    uniform = tail_average(predicted, units, cycles, 3, cap=125)
    assert uniform == pytest.approx(
        [50, (47 + 49) / 2, (49 + 46 + 48) / 3, (44 + 47 + 44) / 3, 125, (20 + 129) / 2]
    )
    decayed = tail_average(predicted, units, cycles, 2, decay=0.5, cap=125)
    assert decayed[1] == pytest.approx((47 + 0.5 * 49) / 1.5)
    # plateau 0: an earlier prediction at the cap is left out (only a lower bound once aged)
    assert tail_average(predicted, units, cycles, 3, cap=125, plateau=0)[5] == pytest.approx(20)
    order = np.random.default_rng(0).permutation(6)
    shuffled = tail_average(predicted[order], units[order], cycles[order], 3, cap=125)
    assert shuffled == pytest.approx(uniform[order])
    assert tail_average(predicted, units, cycles, 1, cap=125) == pytest.approx(np.minimum(predicted, 125))
    # on noisy but unbiased predictions of a falling RUL, the average is closer to the truth
    rng = np.random.default_rng(1)
    cycles = np.tile(np.arange(1, 101), 20)
    units = np.repeat(np.arange(20), 100)
    truth = 100.0 - cycles
    noisy = truth + rng.normal(0, 8, truth.size)
    assert rmse(tail_average(noisy, units, cycles, 8, cap=125), truth) < 0.5 * rmse(noisy, truth)


def test_tail_averaged_model_predicts_its_out_of_fold_rows_and_band_alike():
    """With tail_average the stored predictions (predict), the rows (predict_rows) and the out-of-fold
    rows the band is calibrated on are all averaged; a cut engine gets the row of its last cycle; a blob
    stored before the option loads with it off."""
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 6]
    base = dict(trees=10, members=0, folds=2, network_epochs=0, threads=1)  # 1 thread: LightGBM bit-identical
    plain = RulModel(RulConfig(**base)).fit(data)
    model = RulModel(RulConfig(**base, tail_average=5, tail_decay=0.1)).fit(data)
    oof = model.training_oof
    expected = tail_average(oof["single_window"], oof["unit"], oof["cycle"], 5, 0.1, 125.0)
    assert np.allclose(oof["rul"], expected) and not np.allclose(oof["rul"], oof["single_window"])
    assert np.allclose(plain.training_oof["rul"], oof["single_window"])  # the same folds and trees
    reference = RulModel(RulConfig(**base))
    reference._calibrate(expected, oof["remaining"], oof["protocol_weights"])
    assert model.residual_quantiles == reference.residual_quantiles  # the band of the averaged predictor
    rows, units, cycles = model.predict_rows(data)
    single = plain.predict_rows(data)[0]
    assert np.allclose(rows, tail_average(single, units, cycles, 5, 0.1, 125.0))
    cut = data[(data[:, 0] == 2) & (data[:, 1] <= 80)]
    [at_80] = model.predict(cut)
    assert at_80["rul"] == pytest.approx(rows[(units == 2) & (cycles == 80)][0])
    assert at_80["lower"] <= at_80["rul"] <= at_80["upper"]
    assert "last 5 rows" in model.description["model"] + model.description["tail_average"]
    payload = json.loads(base64.b85decode(model.to_bytes()))
    for key in ("tail_average", "tail_decay", "tail_plateau"):
        del payload["config"][key]
    old = RulModel.from_bytes(base64.b85encode(json.dumps(payload).encode()))
    assert old.config.tail_average == 1 and np.allclose(old.predict_rows(data)[0], single)


REGIMES = CMAPSS_REGIMES


def synthetic_fleet(engines: int, seed: int, regimes: np.ndarray = REGIMES) -> np.ndarray:
    """Run-to-failure rows in the C-MAPSS layout, flown in random regimes each cycle: every sensor's
    level and noise depend on the regime (far more than on wear); sensors 1-6 also drift with a wear
    that grows exponentially towards failure; sensors 7-21 follow the regime only (nothing to learn from them)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(100, 2000, size=(len(regimes), 21))
    spread = rng.uniform(0.2, 2.0, size=(len(regimes), 21))
    gain = np.zeros(21)
    gain[:6] = rng.choice([-1, 1], 6) * rng.uniform(4, 8, 6)
    rows = []
    for unit in range(1, engines + 1):
        life = int(rng.integers(120, 330))
        cycle = np.arange(1, life + 1)
        wear = 3 * np.exp(-(life - cycle) / 50)  # grows over the last 100-150 cycles
        regime = rng.integers(0, len(regimes), life)
        settings = regimes[regime] + rng.normal(0, [0.002, 0.0003, 0], (life, 3))
        sensors = (
            base[regime]
            + gain * wear[:, None] * spread[regime]
            + rng.normal(0, 1, (life, 21)) * spread[regime]
        )
        sensors[:, 6:] = base[regime, 6:]  # regime-only sensors: constant within a regime
        rows.append(np.column_stack([np.full(life, unit), cycle, settings, sensors]))
    return np.vstack(rows)


def test_several_operating_conditions_are_normalised_apart():
    """Six regimes (FD002-like): each gets its own sensor mean and spread, the regime-only sensors are
    dropped, the wear trend survives normalisation, and the model ranks the engines' remaining life.
    (With one normalisation for all rows the same cut scored RMSE 39.8 against 38.8 for a constant guess
    and every regime-only sensor was kept: this test fails without the per-regime normalisation.)"""
    fleet = synthetic_fleet(36, seed=1)
    train, test = fleet[fleet[:, 0] <= 24], fleet[fleet[:, 0] > 24]
    config = RulConfig(trees=60, members=0, folds=2, network_epochs=0)
    model = RulModel(config).fit(train)
    assert model.description["operating_conditions"] == 6 and len(model.norms) == 6
    assert model.sensors == [0, 1, 2, 3, 4, 5]
    # normalised, a sensor no longer tells the regimes apart early in life, though raw it did by far
    z = model._normalise(train)
    young = train[:, 1] <= 40
    regime = np.abs(train[:, 2][:, None] - REGIMES[:, 0]).argmin(axis=1)  # altitudes tell them apart
    raw = [train[young & (regime == r), 5].mean() for r in range(6)]
    normalised = [z[young & (regime == r), 0].mean() for r in range(6)]
    assert np.ptp(raw) > 100 * train[young & (regime == 0), 5].std() and np.ptp(normalised) < 1.0
    # predictions at a cut through each test engine's life, against its true RUL (capped)
    cut = []
    for i, unit in enumerate(range(25, 37)):
        rows = test[test[:, 0] == unit]
        end = int(len(rows) * (0.4 + 0.05 * i))
        cut.append((rows[:end], min(len(rows) - end, config.cap)))
    predicted = [model.predict(rows)[0]["rul"] for rows, _ in cut]
    true = np.array([t for _, t in cut])
    assert rmse(predicted, true) < 0.5 * rmse(np.full(true.size, true.mean()), true)
    # a regime never seen in training takes the nearest known one's normalisation
    unseen = test[test[:, 0] == 25].copy()
    unseen[:, 2] += 3.0  # altitude off the grid by 3 kft
    assert len(model.predict(unseen)) == 1


def test_bad_files_name_the_row(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 " + " ".join(["0.5"] * 24) + "\n1 2 0.1\n")
    with pytest.raises(ValueError, match="row 2: 3 columns"):
        read_cmapss(bad)
    with pytest.raises(CommandError, match="row 2"):
        call_command("eval_prognostics", "--train", str(bad), *SMALL)


@pytest.mark.django_db
def test_train_prognostics_stores_versions_and_trailed_predictions(machine_a, tmp_path, capsys):
    machine_a.family = "turbofan"
    machine_a.save()
    train = tmp_path / "train.txt"
    lines = (CMAPSS / "train_FD001.txt").read_text().splitlines()
    train.write_text("\n".join(line for line in lines if int(line.split()[0]) <= 10))
    call_command("import_condition_data", "--machine", machine_a.tag, "--units", "1,2")
    capsys.readouterr()
    call_command("train_prognostics", "--family", "turbofan", "--file", str(train), "--json", *TINY)
    summary = json.loads(capsys.readouterr().out)
    assert summary["version"] == 1 and len(summary["predictions"]) == 2
    stored = RulModelVersion.objects.get(family="turbofan", version=1)
    assert RulModel.from_bytes(stored.blob).description["units"] == 10
    # the replacement point the asset page and the alerts act on, chosen on the training units
    plan = stored.description["replacement_plan"]
    assert plan == RulModel.from_bytes(stored.blob).description["replacement_plan"]
    assert 0 <= plan["replace_at_rul"] <= 125 and plan["failure_cost"] == 5.0 and plan["lead_time"] == 0
    assert stored.replacement_action == "replace now"
    assert plan["held_out_units"] == 10
    assert plan["held_out_improvement_over_fixed_pct"] <= plan["perfect_knowledge_over_fixed_pct"]
    assert RulPrediction.objects.filter(machine=machine_a, model=stored).count() == 2
    assert Event.objects.filter(action="rul_model.train").count() == 1
    assert Event.objects.filter(action="rul.predict").count() == 2
    # the second run trains on the family's own condition data and becomes version 2; its parts take
    # 10 cycles to arrive, so its point says when to order them
    call_command("train_prognostics", "--family", "turbofan", "--no-predict", "--lead-time", "10", *TINY)
    second = RulModelVersion.objects.get(family="turbofan", version=2)
    assert second.description["replacement_plan"]["lead_time"] == 10 == second.replacement_lead_time
    assert second.replacement_action == "order parts now, replace within 10 cycles"
    with pytest.raises(CommandError, match="--lead-time must be"):
        call_command("train_prognostics", "--family", "turbofan", "--lead-time", "-1", *TINY)
    with pytest.raises(CommandError, match="--failure-cost must exceed"):
        call_command("train_prognostics", "--family", "turbofan", "--failure-cost", "1", *TINY)
    ConditionRecord.objects.all().delete()
    with pytest.raises(CommandError, match="no condition data"):
        call_command("train_prognostics", "--family", "turbofan", *TINY)


def test_the_band_is_of_the_true_rul_under_the_test_protocol():
    """Calibrated on the out-of-fold residuals against the true RUL, each engine's cuts weighted alike
    (the default): a unit predicted at the cap, whose life the sensors cannot tell yet, gets an upper
    bound far above the cap; against the capped RUL (before session 26) its band had almost no width.
    The lower bounds of units near failure are the same either way. With equal weights the quantiles
    are numpy's."""
    from manufacturing.analysis.prognostics import _weighted_quantile

    values = np.array([3.0, -1.0, 7.5, 2.0, 10.0])
    for q in (0.1, 0.5, 0.9):
        assert _weighted_quantile(values, q, np.ones(5)) == pytest.approx(np.quantile(values, q))
    assert _weighted_quantile(values, 0.5, np.array([1.0, 1.0, 1.0, 1.0, 100.0])) > np.quantile(values, 0.5)
    data = read_cmapss(CMAPSS / "train_FD001.txt")
    data = data[data[:, 0] <= 20]
    small = dict(trees=300, members=0, folds=4, network_epochs=0)
    truth = RulModel(RulConfig(**small)).fit(data)
    capped = RulModel(RulConfig(**small, band_criterion="all")).fit(data)
    assert truth.boosters == capped.boosters  # the same models; only the band differs
    young = data[data[:, 1] <= 35]  # every engine 35 cycles into a life of 128 or more
    above = [p["upper"] - p["rul"] for p in truth.predict(young)]
    assert min(above) > 40  # "at least ..., perhaps much more"
    assert np.mean(above) > 2 * np.mean([p["upper"] - p["rul"] for p in capped.predict(young)])
    for worn in (truth.predict(data), capped.predict(data)):  # each engine's last cycle: RUL 0
        assert all(p["rul"] < 30 and p["upper"] < 45 for p in worn)
