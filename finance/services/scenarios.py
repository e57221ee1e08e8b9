"""Scenario (rule) versions: parameters in the database, a change is a new version, activation needs
a second officer (maker-checker), and a proposed version can be shadow-run over a past period."""

from __future__ import annotations

import datetime as dt

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from access.enforcement import check
from access.resources import Resource
from audit.services import record
from finance.models import ScenarioVersion, Transaction
from finance.screening.scenarios import SCENARIOS, run_scenarios
from finance.services.errors import FinanceRefused, FourEyesViolation
from finance.services.history import HISTORY_SLACK_S, history_window_s, last_movements_before, load_table

# Weight of each scenario in the alert risk score (risk = 1 - prod(1 - weight) over the hits).
# Stored with each version's parameters, so a version fixes both what fires and how much it counts.
DEFAULT_WEIGHTS = {
    "STRUCTURING": 0.6,
    "LARGE_CASH": 0.4,
    "ROUND_AMOUNT": 0.2,
    "PASS_THROUGH": 0.5,
    "FAN_IN": 0.5,
    "FAN_OUT": 0.5,
    "VELOCITY": 0.4,
    "DORMANT": 0.4,
    "HIGH_RISK_JURISDICTION": 0.5,
    "SHORT_CYCLE": 0.7,
}
SEED_ACTOR = "system:finance.scenario_defaults"


def _check(actor, action: str, resource) -> None:

    if not isinstance(actor, str):  # system actors (commands, demo) are trusted
        check(actor, action, resource)


def _record(actor, action: str, version: ScenarioVersion, payload: dict, outcome: str = "succeeded"):

    return record(
        actor=actor,
        action=action,
        resource_type="scenario",
        resource_id=str(version.pk),
        outcome=outcome,
        payload={"code": version.code, "version": version.version, **payload},
    )


def default_params(code: str) -> dict:
    return {**SCENARIOS[code].default_params, "weight": DEFAULT_WEIGHTS.get(code, 0.5)}


def scenario_defaults_ensure() -> list[ScenarioVersion]:
    """Version 1 of every shipped scenario with its sourced defaults, active (idempotent)."""
    with transaction.atomic():
        existing = set(ScenarioVersion.objects.values_list("code", flat=True))
        for code in SCENARIOS:
            if code in existing:
                continue
            version = ScenarioVersion.objects.create(
                code=code,
                version=1,
                params=default_params(code),
                active=True,
                approved_at=timezone.now(),
                note=f"Shipped default. Source: {SCENARIOS[code].source}",
            )
            _record(SEED_ACTOR, "scenario.activate", version, {"params": version.params, "seed": True})
    return scenario_versions_active()


def scenario_versions_active() -> list[ScenarioVersion]:
    return list(ScenarioVersion.objects.filter(active=True).order_by("code"))


def active_versions_or_seed() -> list[ScenarioVersion]:
    versions = scenario_versions_active()
    if not versions and not ScenarioVersion.objects.exists():  # a fresh install: seed the library
        versions = scenario_defaults_ensure()
    return versions


def _validated_params(code: str, params: dict) -> dict:
    if code not in SCENARIOS:
        raise FinanceRefused(f"Unknown scenario {code!r}; known: {', '.join(SCENARIOS)}.")
    if not isinstance(params, dict):
        raise FinanceRefused("params must be an object of parameter names to values.")
    allowed = set(SCENARIOS[code].default_params) | {"weight", "countries"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise FinanceRefused(
            f"Unknown parameter(s) for {code}: {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}."
        )
    merged = {**default_params(code), **params}
    for key, value in merged.items():
        default = SCENARIOS[code].default_params.get(key, 0.5 if key == "weight" else None)
        is_number = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        if isinstance(default, int | float) and not isinstance(default, bool) and not is_number:
            raise FinanceRefused(f"{code}.{key} must be a non-negative number, got {value!r}.")
    if not 0 <= merged["weight"] <= 1:
        raise FinanceRefused(f"{code}.weight must be between 0 and 1.")
    return merged


def scenario_version_propose(*, actor, code: str, params: dict, note: str = "") -> ScenarioVersion:
    """A new, inactive version of scenario `code` (the maker). Another officer must approve it."""
    merged = _validated_params(code, params)
    _check(actor, "propose", _scenario_resource(code))
    active_versions_or_seed()  # version 1 is always the shipped default
    with transaction.atomic():
        latest = ScenarioVersion.objects.filter(code=code).aggregate(m=Max("version"))["m"] or 0
        version = ScenarioVersion.objects.create(
            code=code,
            version=latest + 1,
            params=merged,
            created_by=None if isinstance(actor, str) else actor,
            note=note,
        )
        _record(actor, "scenario.propose", version, {"params": merged, "note": note})
    return version


def _scenario_resource(code: str):

    return Resource("scenario", code)


def scenario_version_approve(*, actor, version: ScenarioVersion) -> ScenarioVersion:
    """Activate `version` (the checker); the previous active version of the code is retired."""
    _check(actor, "approve", version)
    if version.created_by_id is not None and version.created_by_id == getattr(actor, "pk", None):
        # trailed outside the work's transaction, which the refusal would roll back
        _record(actor, "scenario.approve", version, {"reason": "four eyes: maker cannot approve"}, "denied")
        raise FourEyesViolation(
            f"You proposed {version.label}; another compliance officer must approve it (four eyes)."
        )
    with transaction.atomic():
        version = ScenarioVersion.objects.select_for_update().get(pk=version.pk)
        if version.active or version.retired_at or version.approved_by_id:
            raise FinanceRefused(f"{version.label} was already decided; propose a new version instead.")
        previous = list(ScenarioVersion.objects.filter(code=version.code, active=True))
        now = timezone.now()
        ScenarioVersion.objects.filter(pk__in=[p.pk for p in previous]).update(active=False, retired_at=now)
        version.active = True
        version.approved_by = None if isinstance(actor, str) else actor
        version.approved_at = now
        version.save(update_fields=["active", "approved_by", "approved_at"])
        _record(
            actor,
            "scenario.approve",
            version,
            {
                "params": version.params,
                "proposed_by": version.created_by.username if version.created_by else "",
                "replaces": [p.version for p in previous],
            },
        )
    return version


def _dormant_last_movements(
    table, mask: np.ndarray, versions: list[ScenarioVersion | None], before: int, team: str | None
) -> dict[str, int] | None:
    """DORMANT versions: the last movement stored before the loaded period (``before``) of each
    account on a shadowed row large enough to fire, as live screening reads it
    (``ingest._stored_last_movements``): an account idle longer than the period's look-back would
    otherwise look new and never come back from dormancy."""
    dormant = [v for v in versions if v is not None and v.code == "DORMANT"]
    if not dormant or not mask.any():
        return None
    min_usd = min({**SCENARIOS["DORMANT"].default_params, **v.params}["min_usd"] for v in dormant)
    large = mask & (table.amount_usd >= min_usd)
    if not large.any():
        return None
    accounts = np.union1d(table.src_account[large], table.dst_account[large]).tolist()
    return last_movements_before(accounts, before, team=team) or None


def scenario_version_shadow_run(
    *, actor, version: ScenarioVersion, since: dt.datetime, until: dt.datetime, team: str | None = None
) -> dict:
    """What `version` would have alerted over [since, until) next to the active version of its code.

    Read-only on the data; the run itself is trailed (who looked at what, with which result).
    """
    _check(actor, "view", version)
    if until <= since:
        raise FinanceRefused("until must be after since.")
    active = ScenarioVersion.objects.filter(code=version.code, active=True).first()
    start = int(since.timestamp())
    window = history_window_s([version] + ([active] if active else [])) + HISTORY_SLACK_S
    queryset = Transaction.objects.filter(ts__gte=since - dt.timedelta(seconds=window), ts__lt=until)
    if team:
        queryset = queryset.filter(team=team)
    table, _ = load_table(queryset)
    mask = table.ts >= start
    result = {
        "code": version.code,
        "version": version.version,
        "active_version": active.version if active else None,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "transactions": int(mask.sum()),
    }
    older_last = _dormant_last_movements(table, mask, [version, active], start - window, team or None)
    sets = {}
    for name, v in (("proposed", version), ("active", active)):
        if v is None:
            sets[name] = set()
            continue
        hits = run_scenarios(
            table,
            screen_mask=mask,
            params_by_code={v.code: v.params},
            codes=[v.code],
            older_last=older_last,
        )
        sets[name] = {str(table.tx_ref[h.row]) for h in hits}
    result.update(
        {
            "would_alert": len(sets["proposed"]),
            "alerts_now": len(sets["active"]),
            "new": sorted(sets["proposed"] - sets["active"])[:50],
            "dropped": sorted(sets["active"] - sets["proposed"])[:50],
            "new_count": len(sets["proposed"] - sets["active"]),
            "dropped_count": len(sets["active"] - sets["proposed"]),
            "labelled_laundering_caught": int(
                np.isin(table.tx_ref[table.label == 1], sorted(sets["proposed"])).sum()
            ),
        }
    )

    record(
        actor=actor,
        action="scenario.shadow_run",
        resource_type="scenario",
        resource_id=str(version.pk),
        outcome="succeeded",
        payload={k: v for k, v in result.items() if k not in ("new", "dropped")},
    )
    return result
