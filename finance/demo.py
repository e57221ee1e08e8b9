"""The finance demo step: the AMLSim sample (../shared/data/amlsim) screened into a demo bank with two
AML teams (accounts split by node id: even -> aml-eu, odd -> aml-us), screened against the shared UN
sanctions list, and the demo model served as
the SAR drafting model when it is built. Idempotent: a team that already holds transactions is skipped."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings

DEMO_ACTOR = "demo:bootstrap"
TEAMS = ("aml-eu", "aml-us")
DAY = 86400


def demo_rows() -> int:
    """How many AMLSim transactions the demo screens (the whole sample is 120,558)."""
    return int(os.environ.get("SUITE_DEMO_FINANCE_ROWS", "20000"))


def demo_sanctions_list(say: Callable[[str], None]) -> None:
    """Screen the demo's parties against the shared UN consolidated list (683 names), imported once."""
    from finance.models import SanctionsListVersion
    from finance.services.sanctions import sanctions_list_import

    path = Path(settings.SHARED_DATA_DIR) / "sanctions" / "un_list.csv"
    if SanctionsListVersion.objects.filter(name="un").exists() or not path.exists():
        return
    row = sanctions_list_import(actor=DEMO_ACTOR, name="un", source=path)
    say(f"finance: sanctions list un@{row.version} ({row.entries} entries) active")


def load_demo_finance(
    say: Callable[[str], None], *, folder: Path | None = None, rows: int | None = None
) -> None:
    from finance.models import Transaction
    from finance.screening.formats import read_amlsim
    from finance.services import transactions_ingest
    from finance.services.scenarios import scenario_defaults_ensure

    scenario_defaults_ensure()
    demo_sanctions_list(say)
    folder = folder or Path(settings.SHARED_DATA_DIR) / "amlsim"
    if not (folder / "transactions.csv").exists():
        say(f"finance: {folder} not found, no demo transactions")
        return
    table = read_amlsim(folder)
    shown = min(rows or demo_rows(), len(table))
    ensure_risk_model(say, table, shown, source=str(folder))
    table = table.take(np.arange(shown))
    # AMLSim counts days from step 0 (read as 1970-01-01): the demo bank's history ends yesterday,
    # so queues age, SLAs and SAR narratives read as current work.
    today = int(time.time()) // DAY * DAY
    table.ts = table.ts + (today - DAY - int(table.ts.max()) // DAY * DAY)
    table.tx_ref = np.char.add("amlsim:", table.tx_ref.astype(str))
    even = np.array([int(a) % 2 == 0 if a.isdigit() else True for a in table.src_account])
    for team, mask in zip(TEAMS, (even, ~even), strict=True):
        if Transaction.objects.filter(team=team).exists():
            say(f"finance: team {team} already has transactions, skipped")
            continue
        result = transactions_ingest(
            actor=DEMO_ACTOR, table=table.take(mask), team=team, batch=f"demo-{team}", source="demo:amlsim"
        )
        say(
            f"finance: {team}: {result.transactions} AMLSim transactions, {result.alerts} alerts, {result.cases} cases"
        )
    register_sar_model(say)


def ensure_risk_model(say: Callable[[str], None], table, shown: int, *, source: str) -> None:
    """Without an active screening model, train one on the AMLSim rows the demo does not screen (its
    alerts are then scored out of sample) and activate it, trailed as the demo's doing."""
    from finance.models import ModelVersion
    from finance.services.risk_models import risk_model_fit, risk_model_store

    if ModelVersion.objects.filter(active=True).exists():
        return
    train = np.arange(len(table)) >= shown
    if train.sum() < 1000 or not (table.label[train] > 0).any():
        say("finance: too few labelled AMLSim rows beyond the demo's for a risk model, none trained")
        return
    model = risk_model_fit(table, train, source=f"{source} (rows {shown + 1}-{len(table)})", fmt="amlsim")
    stored = risk_model_store(actor=DEMO_ACTOR, model=model, activate=True)
    say(
        f"finance: risk model {model.version} trained on {int(train.sum())} AMLSim rows the demo does not "
        f"screen (held-out PR-AUC {model.metrics.get('holdout_pr_auc', 'n/a')}), active={stored.row.active}"
    )


def register_sar_model(say: Callable[[str], None]) -> None:
    """Serve the demo model under the SAR drafting name (finance_sar), if it is built."""
    from finance.services.sar import model_name
    from inference.services import ModelNotFound, model_register, resolve_target

    base_name = getattr(settings, "FINANCE_SAR_BASE_MODEL", "suite-demo")
    try:
        base = resolve_target(base_name).model
    except ModelNotFound:
        say(
            f"model {model_name()}: not registered, {base_name} is not built yet (SARs use the structured draft)"
        )
        return
    model_register(
        actor=DEMO_ACTOR,
        path=base.path,
        name=model_name(),
        draft_name=base.draft,
        description="SAR drafting: phrases structured case facts; numbers and citations verified",
    )
    say(f"model {model_name()}: serves {base.path}")
