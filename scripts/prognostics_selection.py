"""Session 10 selection of the C-MAPSS RUL recipe on the TRAINING engines only (docs/manufacturing.md,
"Prognostics selection"). The test file and the RUL file are never read here.

The criterion mirrors `eval_prognostics`' protocol (`prognostics.protocol_rmse`): each held-out training
engine is cut at every cycle from 30 seen to one before failure, only the last cycle of the cut is scored,
against the true RUL uncapped (as `rmse`; the capped-truth figure is printed beside it), every engine
weighted equally. The out-of-fold predictions are those of `RulModel.fit` (5 folds by engine; the
features and windows only look back, so the prediction at cycle c of a held-out engine is the one its
cut at c would get). The all-cycle out-of-fold RMSE used before session 10 is printed for comparison.

One fit per candidate below (one at a time, cached as .npz in --cache, so a rerun only scores); a fit with
`network_seeds` N also gives the recipes with 1..N networks per fold (network s of a fold has the same
seed whatever N is), and a CNN fit plus a GRU fit give the "cnn,gru" mixes exactly (network s of a
fold is the list's s-th architecture with the seed of index s). For each recipe the blend weight is
chosen as `RulConfig.blend_criterion` says ("protocol" or "all") on the same out-of-fold predictions.
The adopted recipe: the lowest protocol RMSE among the recipes whose estimated quiet-host training time
(CPU seconds of its parts / 2 cores) is under 250 s (the budget is 300 s on 2 cores).

Session 11: test-time averaging (`RulConfig.tail_average`, `tail_decay`, `tail_plateau`) is scored on
each recipe's blended out-of-fold predictions over a grid (lengths 1-20, uniform or decaying weights,
with or without leaving out earlier predictions near the cap), chosen on the same uncapped protocol RMSE,
with a paired bootstrap over engines against no averaging (uncapped and capped truth).

usage: nice -n 5 .venv/bin/python scripts/prognostics_selection.py [--train PATH] [--cache DIR]
           [--only NAME[,NAME]] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
DATA = Path(os.environ.get("SUITE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "cmapss"
BUDGET_QUIET_SECONDS = 250.0

# name -> RulConfig overrides (everything else: the RulConfig defaults)
CANDIDATES = {
    "lightgbm": {"network_epochs": 0},  # the part every recipe shares (its CPU seconds)
    "cnn_w40": {"network_architecture": "cnn", "network_window": 40, "network_seeds": 3},
    # networks 3-5 of each fold of cnn_w40 (the recipes with 4-6 CNNs per fold, with cnn_w40's 0-2)
    "cnn_w40_more": {
        "network_architecture": "cnn",
        "network_window": 40,
        "network_seeds": 3,
        "network_first_index": 3,
    },
    "cnn_w30": {"network_architecture": "cnn", "network_window": 30, "network_seeds": 2},
    "gru_w40": {"network_architecture": "gru", "network_window": 40, "network_seeds": 2},
    # session 23: the adopted CNNs with half the learning rate, twice the epochs and patience (judged
    # against "cnn_w40 x4": the last "not yet judged" item of docs/manufacturing.md)
    "cnn_w40_slow": {
        "network_architecture": "cnn",
        "network_window": 40,
        "network_seeds": 4,
        "network_learning_rate": 5e-4,
        "network_epochs": 120,
        "network_patience": 24,
    },
}
# fitted only when named in --only: session 9 measured the GRU at ~55 CPU-s per network (5 CNNs: ~100)
# and 0.9 worse out of fold (docs/manufacturing.md), so it is not refitted by default
OPTIONAL = {"gru_w40", "cnn_w40_slow"}


def fit_candidate(name: str, train, cache: Path) -> Path:
    from manufacturing.analysis.prognostics import RulConfig, RulModel

    out = cache / f"{name}.npz"
    if out.exists():
        return out
    config = RulConfig(**CANDIDATES[name], blend_criterion="protocol")
    cpu, wall = time.process_time(), time.perf_counter()
    model = RulModel(config).fit(train, source="selection")
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    oof = model.training_oof
    runs = model.description["networks"]
    per_fold = max(config.network_seeds, 1)
    # network CPU per seed index (runs are stored fold by fold, seed index inside)
    net_seconds = [sum(run["seconds"] for run in runs[s::per_fold]) for s in range(per_fold)]
    np.savez(
        out,
        unit=oof["unit"], cycle=oof["cycle"], remaining=oof["remaining"], lightgbm=oof["lightgbm"],
        networks=np.array(oof["networks"]), net_wall_seconds=np.array(net_seconds),
        cpu_seconds=cpu, wall_seconds=wall, config=json.dumps(CANDIDATES[name]),
    )  # fmt: skip
    print(f"# fitted {name}: {cpu:.0f} CPU-s, {wall:.0f} s wall", file=sys.stderr)
    return out


def score(trees, nets, remaining, weights, cap, criterion: str, step=0.05) -> dict:
    from manufacturing.analysis.prognostics import protocol_rmse

    ones = np.ones_like(remaining)
    capped = np.minimum(remaining, cap)
    grid = np.round(np.arange(0, 1 + 1e-9, step), 4)
    if criterion == "protocol":
        errors = [protocol_rmse((1 - w) * trees + w * nets, remaining, weights) for w in grid]
    elif criterion == "protocol_capped":
        errors = [protocol_rmse((1 - w) * trees + w * nets, capped, weights) for w in grid]
    else:
        errors = [protocol_rmse((1 - w) * trees + w * nets, capped, ones) for w in grid]
    blend = float(grid[int(np.argmin(errors))])
    predicted = (1 - blend) * trees + blend * nets
    return {
        "blend": blend,
        "protocol_rmse": round(protocol_rmse(predicted, remaining, weights), 3),
        "protocol_rmse_capped_truth": round(protocol_rmse(predicted, remaining, weights, cap), 3),
        "all_cycles_oof_rmse": round(protocol_rmse(predicted, capped, ones), 3),
    }


# test-time averaging (`RulConfig.tail_average`, `tail_decay`, `tail_plateau`) scored on each recipe's
# blended out-of-fold predictions (blend chosen first, as `RulModel.fit` does); (1, 0, -1) is off
TAIL_LENGTHS = (1, 3, 5, 8, 10, 15, 20)
TAIL_DECAYS = (0.0, 0.1, 0.2, 0.3)
TAIL_PLATEAUS = (-1.0, 0.0, 5.0, 10.0, 20.0)


def tail_grid(predicted, unit, cycle, remaining, weights, cap) -> dict:
    """Protocol RMSE (uncapped / capped truth) of every test-time averaging on the grid; the choice is
    the lowest uncapped protocol RMSE (ties to the shorter average), as for the recipes."""
    from manufacturing.analysis.prognostics import protocol_rmse, tail_average

    grid = {}
    for length in TAIL_LENGTHS:
        for decay in TAIL_DECAYS if length > 1 else (0.0,):
            for plateau in TAIL_PLATEAUS if length > 1 else (-1.0,):
                averaged = tail_average(predicted, unit, cycle, length, decay, cap, plateau)
                grid[(length, decay, plateau)] = (
                    round(protocol_rmse(averaged, remaining, weights), 3),
                    round(protocol_rmse(averaged, remaining, weights, cap), 3),
                )
    best = min(grid, key=lambda k: (grid[k][0], k[0]))
    averaging = min((k for k in grid if k[0] > 1), key=lambda k: (grid[k][0], k[0]))
    return {"grid": grid, "best": best, "best_averaging": averaging}


def engine_bootstrap(a, b, remaining, unit, weights, cap=None, draws=2000, seed=0) -> dict:
    """Paired bootstrap over engines of the protocol MSE difference (a - b): how often a is better."""
    truth = np.minimum(remaining, cap) if cap is not None else remaining
    engines = np.unique(unit)
    index = np.searchsorted(engines, unit)
    mse = [np.bincount(index, weights * (np.asarray(p) - truth) ** 2, engines.size) for p in (a, b)]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, engines.size, (draws, engines.size))
    diff = (mse[0][picks] - mse[1][picks]).mean(axis=1)
    return {
        "a_better_share": round(float(np.mean(diff < 0)), 3),
        "mse_difference": round(float(diff.mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", default=str(DATA / "train_FD001.txt"))
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "prognostics_selection"))
    parser.add_argument("--only", default="", help="comma list of candidates to fit (default: all)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from manufacturing.analysis.prognostics import RulConfig, protocol_weights, read_cmapss, tail_average

    cache = Path(args.cache) / Path(args.train).stem
    cache.mkdir(parents=True, exist_ok=True)
    train = read_cmapss(args.train)
    names = [
        n
        for n in (args.only.split(",") if args.only else CANDIDATES)
        if n and (args.only or n not in OPTIONAL)
    ]
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidate(s) {', '.join(unknown)}: {', '.join(CANDIDATES)}")
    for name in names:
        fit_candidate(name, train, cache)
    fits = {n: np.load(cache / f"{n}.npz") for n in CANDIDATES if (cache / f"{n}.npz").exists()}
    cap = RulConfig().cap
    min_history = RulConfig().protocol_min_history
    any_fit = fits["lightgbm"]
    unit, cycle, remaining = any_fit["unit"], any_fit["cycle"], any_fit["remaining"]
    weights = protocol_weights(unit, cycle, remaining, min_history)
    trees = any_fit["lightgbm"]
    # CPU seconds: the shared part is the LightGBM-only fit's; a fit's remaining CPU is shared among
    # its networks in proportion to their wall seconds
    lightgbm = fits.pop("lightgbm")
    shared_cpu = float(lightgbm["cpu_seconds"])

    def network_cpu(name: str, index: int) -> float:
        f = fits[name]
        walls = f["net_wall_seconds"]
        return (float(f["cpu_seconds"]) - shared_cpu) * float(walls[index]) / float(walls.sum())

    recipes = {}
    for name, f in fits.items():
        assert np.array_equal(f["unit"], unit) and np.array_equal(f["cycle"], cycle)
        config = json.loads(str(f["config"]))
        if config.get("network_first_index"):
            continue  # a continuation: scored below with the fit it continues
        for s in range(1, f["networks"].shape[0] + 1):
            recipes[f"{name} x{s}"] = (
                {**config, "network_seeds": s},
                [(name, i) for i in range(s)],
            )
    if "cnn_w40" in fits and "cnn_w40_more" in fits:
        for s in range(4, 7):
            recipes[f"cnn_w40 x{s}"] = (
                {"network_architecture": "cnn", "network_window": 40, "network_seeds": s},
                [("cnn_w40", i) for i in range(3)] + [("cnn_w40_more", i) for i in range(s - 3)],
            )
    if "cnn_w40" in fits and "gru_w40" in fits:  # exact "cnn,gru" mixes over the last 40 cycles
        recipes["cnn,gru w40 x2"] = (
            {"network_architecture": "cnn,gru", "network_window": 40, "network_seeds": 2},
            [("cnn_w40", 0), ("gru_w40", 1)],
        )
    rows = {"lightgbm only": {"networks": 0, **score(trees, trees, remaining, weights, cap, "protocol")}}
    rows["lightgbm only"]["quiet_seconds_estimate"] = round(shared_cpu / 2, 1)
    for label, (config, parts) in recipes.items():
        nets = np.mean([fits[n]["networks"][i] for n, i in parts], axis=0)
        trees = fits[parts[0][0]]["lightgbm"]  # each fit's own LightGBM (the same seeds in every fit)
        seconds = shared_cpu + sum(network_cpu(n, i) for n, i in parts)
        rows[label] = {
            "config": config,
            "quiet_seconds_estimate": round(seconds / 2, 1),
            "blend_on_protocol": score(trees, nets, remaining, weights, cap, "protocol"),
            "blend_on_protocol_capped_truth": score(trees, nets, remaining, weights, cap, "protocol_capped"),
            "blend_on_all_cycles": score(trees, nets, remaining, weights, cap, "all"),
        }
    affordable = {
        k: v for k, v in rows.items() if "config" in v and v["quiet_seconds_estimate"] <= BUDGET_QUIET_SECONDS
    }
    best = min(affordable, key=lambda k: affordable[k]["blend_on_protocol"]["protocol_rmse"])
    # test-time averaging on each recipe's blended out-of-fold predictions
    tails = {}
    for label, (_config, parts) in recipes.items():
        nets = np.mean([fits[n]["networks"][i] for n, i in parts], axis=0)
        trees = fits[parts[0][0]]["lightgbm"]
        blend = rows[label]["blend_on_protocol"]["blend"]
        blended = (1 - blend) * trees + blend * nets
        result = tail_grid(blended, unit, cycle, remaining, weights, cap)
        off, best_tail, averaging = result["grid"][(1, 0.0, -1.0)], result["best"], result["best_averaging"]
        averaged = tail_average(blended, unit, cycle, *averaging[:2], cap, averaging[2])
        tails[label] = {
            "off": off,
            "best": {"tail_average": best_tail[0], "tail_decay": best_tail[1], "tail_plateau": best_tail[2]},
            "best_protocol": result["grid"][best_tail],
            # the best averaging (length > 1) against none, paired over engines
            "best_averaging": {
                "tail_average": averaging[0],
                "tail_decay": averaging[1],
                "tail_plateau": averaging[2],
            },
            "best_averaging_protocol": result["grid"][averaging],
            "bootstrap_vs_off": engine_bootstrap(
                averaged, np.clip(blended, 0, cap), remaining, unit, weights
            ),
            "bootstrap_vs_off_capped_truth": engine_bootstrap(
                averaged, np.clip(blended, 0, cap), remaining, unit, weights, cap
            ),
            "grid": {f"m{k[0]} decay{k[1]:g} plateau{k[2]:g}": v for k, v in result["grid"].items()},
        }
    report = {
        "train": args.train,
        "engines": int(np.unique(unit).size),
        "criterion": f"protocol_rmse: cuts from {min_history} cycles, last cycle, true RUL uncapped",
        "fits": {
            n: {
                "cpu_seconds": round(float(f["cpu_seconds"]), 1),
                "wall_seconds": round(float(f["wall_seconds"]), 1),
            }
            for n, f in [("lightgbm", lightgbm), *fits.items()]
        },
        "recipes": rows,
        "adopted": best,
        "tail_average": tails,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{'recipe':<18}{'quiet s':>8}{'blend':>7}{'protocol':>10}{'capped':>8}{'all-cyc':>9}  other blend criteria"
    )
    for label, row in rows.items():
        p = row.get("blend_on_protocol", row)
        a = row.get("blend_on_all_cycles", row)
        c = row.get("blend_on_protocol_capped_truth", row)
        print(
            f"{label:<18}{row['quiet_seconds_estimate']:>8}{p['blend']:>7}{p['protocol_rmse']:>10}"
            f"{p['protocol_rmse_capped_truth']:>8}{p['all_cycles_oof_rmse']:>9}  "
            f"capped: blend {c['blend']} {c['protocol_rmse']}/{c['protocol_rmse_capped_truth']}; "
            f"all: blend {a['blend']} {a['protocol_rmse']}/{a['protocol_rmse_capped_truth']}/{a['all_cycles_oof_rmse']}"
        )
    print(f"adopted: {best}")
    print("test-time averaging (protocol uncapped / capped; off = the last row alone):")
    for label, tail in tails.items():
        b = tail["best"]
        print(
            f"  {label:<16} off {tail['off'][0]}/{tail['off'][1]}  best m{b['tail_average']} "
            f"decay {b['tail_decay']:g} plateau {b['tail_plateau']:g}: {tail['best_protocol'][0]}/"
            f"{tail['best_protocol'][1]}; best averaging m{tail['best_averaging']['tail_average']} decay "
            f"{tail['best_averaging']['tail_decay']:g} plateau {tail['best_averaging']['tail_plateau']:g}: "
            f"{tail['best_averaging_protocol'][0]}/{tail['best_averaging_protocol'][1]} (bootstrap over engines: better in "
            f"{tail['bootstrap_vs_off']['a_better_share']:.0%} uncapped, "
            f"{tail['bootstrap_vs_off_capped_truth']['a_better_share']:.0%} capped)"
        )
    grid = tails[best]["grid"]
    print(f"  grid for {best} (uncapped/capped):")
    for key, value in grid.items():
        print(f"    {key:<26} {value[0]}/{value[1]}")


if __name__ == "__main__":
    main()
