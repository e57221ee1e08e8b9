"""C-MAPSS evaluation of the RUL recipe (standard protocol: cap 125, last cycle of each test engine)."""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from manufacturing.analysis.prognostics import RulConfig, evaluate


def cmapss_path(name: str) -> str:
    return str(Path(settings.SHARED_DATA_DIR) / "cmapss" / name)


def config_arguments(parser) -> None:
    defaults = RulConfig()
    parser.add_argument("--trees", type=int, default=defaults.trees, help="boosting rounds per member")
    parser.add_argument(
        "--members",
        type=int,
        default=defaults.members,
        help="LightGBM members on all data (0: the fold models)",
    )
    parser.add_argument("--folds", type=int, default=defaults.folds, help="folds for the uncertainty band")
    parser.add_argument("--threads", type=int, default=defaults.threads)
    parser.add_argument(
        "--network-epochs",
        type=int,
        default=defaults.network_epochs,
        help="most epochs of each fold's CNN (0: LightGBM only)",
    )
    parser.add_argument(
        "--network-seeds",
        type=int,
        default=defaults.network_seeds,
        help="CNNs per fold (different seeds), averaged",
    )
    parser.add_argument(
        "--network-average-from",
        type=int,
        default=defaults.network_average_from,
        help="> 0: each CNN is the average of its weights from this epoch on (SWA); 0: the best epoch",
    )
    parser.add_argument(
        "--network-architecture",
        default=defaults.network_architecture,
        help="the network members: cnn (1-D CNN), gru (a GRU over the window) or a comma list, e.g. "
        "cnn,gru: network s of each fold takes the list's s-th (see --network-seeds)",
    )
    parser.add_argument(
        "--network-window",
        type=int,
        default=defaults.network_window,
        help="cycles the network sees (0: the feature window, 30)",
    )
    parser.add_argument(
        "--network-budget-windows",
        type=int,
        default=defaults.network_budget_windows,
        help="windows a fold's networks train on per epoch, all together: fewer networks per fold (at "
        "least 1) where a fold's windows times --network-seeds exceed it (0: no bound)",
    )
    parser.add_argument(
        "--knee",
        type=float,
        default=defaults.knee,
        help="training target plateau above the cap (predictions are still clipped to the cap); 0: the cap",
    )
    parser.add_argument(
        "--blend-criterion",
        choices=["protocol", "all"],
        default=defaults.blend_criterion,
        help="what the blend weight minimises on the out-of-fold predictions: protocol (each training "
        "engine cut at every cycle from 30, last cycle, true RUL uncapped, engines weighted equally) or "
        "all (every cycle against the capped RUL, before session 10)",
    )
    parser.add_argument(
        "--band-criterion",
        choices=["protocol", "all"],
        default=defaults.band_criterion,
        help="what the uncertainty band is calibrated on: protocol (the out-of-fold residuals against the "
        "true RUL, each training engine's cuts weighted alike) or all (every cycle against the capped RUL, "
        "before session 26)",
    )
    parser.add_argument(
        "--tail-average",
        type=int,
        default=defaults.tail_average,
        help="test-time averaging: each RUL is the weighted mean of the last N rows' predictions, each "
        "aged by the cycles since (1: off, the last row alone)",
    )
    parser.add_argument(
        "--tail-decay",
        type=float,
        default=defaults.tail_decay,
        help="weights (1 - decay)^j of the row j back in --tail-average (0: uniform)",
    )
    parser.add_argument(
        "--tail-plateau",
        type=float,
        default=defaults.tail_plateau,
        help=">= 0: --tail-average leaves out earlier predictions at or above the cap minus this; < 0: none",
    )
    parser.add_argument(
        "--long-smoothing",
        type=float,
        default=defaults.long_smoothing,
        help="> 0: LightGBM also gets a slower smoothed level (this factor) and the window's spread",
    )
    parser.add_argument(
        "--baseline-cycles",
        type=int,
        default=defaults.baseline_cycles,
        help="each unit's baseline: the mean of its first N cycles, and the drift from it per sensor "
        "(LightGBM and the networks; 0: off)",
    )


def config_from(options) -> RulConfig:
    if options["trees"] < 1 or options["members"] < 0 or options["threads"] < 1:
        raise CommandError("--trees and --threads must be at least 1, --members at least 0")
    if options["members"] == 0 and options["folds"] < 2:
        raise CommandError("--members 0 uses the fold models: give --folds 2 or more")
    if options["network_epochs"] < 0:
        raise CommandError("--network-epochs cannot be negative")
    if options["network_seeds"] < 1:
        raise CommandError("--network-seeds must be at least 1")
    if min(options["network_average_from"], options["network_window"], options["network_budget_windows"]) < 0:
        raise CommandError(
            "--network-average-from, --network-window and --network-budget-windows cannot be negative"
        )
    architectures = [name.strip() for name in options["network_architecture"].split(",")]
    if not architectures or any(name not in ("cnn", "gru") for name in architectures):
        raise CommandError("--network-architecture is cnn, gru or a comma list of them, e.g. cnn,gru")
    if options["knee"] != 0 and options["knee"] < RulConfig().cap:
        raise CommandError(f"--knee is 0 (the cap) or at least the cap, {RulConfig().cap:g}")
    if not 0 <= options["long_smoothing"] < 1:
        raise CommandError("--long-smoothing is a factor from 0 (off) to below 1, e.g. 0.03")
    if options["baseline_cycles"] < 0:
        raise CommandError("--baseline-cycles cannot be negative (0: off)")
    if options["tail_average"] < 1 or not 0 <= options["tail_decay"] < 1:
        raise CommandError("--tail-average must be at least 1 and --tail-decay from 0 to below 1")
    return RulConfig(
        tail_average=options["tail_average"],
        tail_decay=options["tail_decay"],
        tail_plateau=options["tail_plateau"],
        trees=options["trees"],
        members=options["members"],
        folds=options["folds"],
        threads=options["threads"],
        network_epochs=options["network_epochs"],
        network_seeds=options["network_seeds"],
        long_smoothing=options["long_smoothing"],
        baseline_cycles=options["baseline_cycles"],
        network_average_from=options["network_average_from"],
        network_architecture=",".join(architectures),
        network_window=options["network_window"],
        network_budget_windows=options["network_budget_windows"],
        knee=options["knee"],
        blend_criterion=options["blend_criterion"],
        band_criterion=options["band_criterion"],
    )


class Command(BaseCommand):
    help = (
        "Train on a C-MAPSS train file, predict each test engine's RUL at its last cycle, report RMSE/PHM08."
    )

    def add_arguments(self, parser):
        parser.add_argument("--train", default=cmapss_path("train_FD001.txt"))
        parser.add_argument("--test", default=cmapss_path("test_FD001.txt"))
        parser.add_argument("--rul", default=cmapss_path("RUL_FD001.txt"))
        parser.add_argument("--predictions", action="store_true", help="include each engine's prediction")
        parser.add_argument("--json", action="store_true")
        config_arguments(parser)

    def handle(self, *args, **options):
        for key in ("train", "test", "rul"):
            if not Path(options[key]).exists():
                raise CommandError(f"--{key} {options[key]} does not exist")
        try:
            report = evaluate(options["train"], options["test"], options["rul"], config_from(options))
        except ValueError as error:
            raise CommandError(str(error)) from None
        report.pop("_model")
        if not options["predictions"]:
            report.pop("predictions")
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
        else:
            self.stdout.write(
                f"{report['engines']} engines: RMSE {report['rmse']:.2f}, PHM08 {report['phm08_score']:.1f}, "
                f"trained in {report['train_seconds']:.1f} s, band coverage {report['band_coverage']:.0%}"
            )
