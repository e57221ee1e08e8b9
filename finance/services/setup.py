"""What a screening decision depends on besides the transactions: the active scenario versions, the
risk model, the sanctions/PEP lists and whitelist, the engine's thresholds (``ScreeningSetup``),
cached per process and re-checked against the database on every call (``screening_setup``)."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, replace

from django.db import connection
from django.utils import timezone

from finance.models import Account, MatchWhitelist, ModelVersion, SanctionsListVersion, ScenarioVersion
from finance.screening.engine import EngineConfig, ScenarioSpec
from finance.screening.names import NameIndex
from finance.screening.risk_model import RiskModel
from finance.services.errors import FinanceRefused
from finance.services.history import HISTORY_SLACK_S, history_window_s
from finance.services.sanctions import screening_index, whitelist_in_force
from finance.services.scenarios import DEFAULT_WEIGHTS, active_versions_or_seed

REVIEW_THRESHOLD = 0.3  # risk at or above: alert, decision "review"
HOLD_THRESHOLD = 0.8  # risk at or above: alert, decision "hold" (stop the payment pending review)
NAME_THRESHOLD = 0.82  # a party name scoring at least this against a list entry is a match
NAME_HOLD_SCORE = 0.92  # a match this close holds the payment whatever the other signals say


@dataclass
class ScreeningSetup:
    """Everything a screening decision depends on besides the transactions (see the trail)."""

    versions: list[ScenarioVersion]
    specs: list[ScenarioSpec]
    config: EngineConfig
    model: RiskModel | None
    names: NameIndex | None
    whitelist: dict
    lookback: int
    has_customers: bool = True  # any account with a KYC customer (read per call, not cached)


_MODEL_CACHE: dict[str, RiskModel] = {}


def active_model() -> RiskModel | None:
    """The active risk model (ModelVersion.active), loaded once per process and version."""
    row = (
        ModelVersion.objects.filter(active=True).order_by("-created_at").values_list("version", "pk").first()
    )
    if row is None:
        return None
    return model_of_version(row[0])


def model_of_version(version: str) -> RiskModel | None:
    """The stored model of ``version`` (a content hash: the loaded booster is checked against it)."""
    model = _MODEL_CACHE.get(version)
    if model is None:
        blob = ModelVersion.objects.filter(version=version).values_list("blob", flat=True).first()
        if blob is None:
            return None
        model = RiskModel.from_bytes(blob)
        if model.version != version:
            raise FinanceRefused(f"Stored model {version} hashes to {model.version}: the blob was altered.")
        _MODEL_CACHE.clear()
        _MODEL_CACHE[version] = model
    return model


def _build_setup(now: dt.datetime) -> ScreeningSetup:
    versions = active_versions_or_seed()
    specs = [ScenarioSpec(v.code, v.version, dict(v.params)) for v in versions]
    config = EngineConfig(
        rule_weights={
            v.code: float(v.params.get("weight", DEFAULT_WEIGHTS.get(v.code, 0.5))) for v in versions
        },
        alert_threshold=REVIEW_THRESHOLD,
        hold_threshold=HOLD_THRESHOLD,
        name_threshold=NAME_THRESHOLD,
        name_hold_score=NAME_HOLD_SCORE,
    )
    names = screening_index()
    return ScreeningSetup(
        versions=versions,
        specs=specs,
        config=config,
        model=active_model(),
        names=names,
        whitelist=whitelist_in_force(now) if names is not None else {},
        lookback=history_window_s(versions) + HISTORY_SLACK_S,
    )


def _config_query() -> str:
    """One statement that reads what a screening configuration consists of: the active scenario
    versions with their parameters as stored, the active lists (id, content hash), the active
    models (id, content hash), the whitelist entries in force; and whether any account has a KYC
    customer (data, not configuration: read here to save its own query)."""
    q = connection.ops.quote_name
    scenario, lists = q(ScenarioVersion._meta.db_table), q(SanctionsListVersion._meta.db_table)
    model, whitelist = q(ModelVersion._meta.db_table), q(MatchWhitelist._meta.db_table)
    account = q(Account._meta.db_table)
    # identifiers only from the models' own table names; every value is a parameter
    return (
        f"SELECT 's', id, code, CAST(params AS TEXT) FROM {scenario} WHERE active = %s"  # noqa: S608
        f" UNION ALL SELECT 'l', id, sha256, name FROM {lists} WHERE active = %s"
        f" UNION ALL SELECT 'm', id, version, '' FROM {model} WHERE active = %s"
        f" UNION ALL SELECT 'w', id, party_hash, entry_id || ' ' || CAST(expires_at AS TEXT)"
        f" FROM {whitelist} WHERE expires_at > %s"
        f" UNION ALL SELECT 'c', COUNT(*), '', '' FROM (SELECT 1 FROM {account}"
        f" WHERE customer_id IS NOT NULL LIMIT 1) AS k"
    )


def config_key(now: dt.datetime) -> tuple[tuple, bool]:
    """(the configuration's rows, sorted: the cache key; whether any account has a customer)."""
    with connection.cursor() as cursor:
        cursor.execute(_config_query(), [True, True, True, connection.ops.adapt_datetimefield_value(now)])
        rows = cursor.fetchall()
    customers = any(r[0] == "c" and r[1] for r in rows)
    return tuple(sorted(tuple(str(v) for v in r) for r in rows if r[0] != "c")), customers


_SETUP_CACHE: dict[tuple, ScreeningSetup] = {}
_SETUP_LOCK = threading.Lock()


def screening_setup() -> ScreeningSetup:
    """The screening configuration, cached per process and checked on every call.

    The cache key is the configuration itself as the database holds it now, read in one statement
    (``_config_query``): a version activated, approved or retired, a list imported, a model
    activated, a whitelist entry added or expired, by this process or any other, by the services
    or by hand in SQL, changes the key, and the next call rebuilds. A rebuild re-reads the key
    after it and caches only when nothing changed meanwhile (another writer committing between
    the two reads gets a setup used once, not cached)."""
    now = timezone.now()
    key, customers = config_key(now)
    if not any(row[0] == "s" for row in key):  # nothing active: seed the library (a fresh install)
        active_versions_or_seed()
        key, customers = config_key(now)
        if not any(row[0] == "s" for row in key):  # every version retired: nothing to cache
            return replace(_build_setup(now), has_customers=customers)
    database = (connection.vendor, str(connection.settings_dict.get("NAME")), connection.alias)
    cached = _SETUP_CACHE.get((database, key))
    if cached is None:
        built = _build_setup(now)
        again, _ = config_key(now)
        if again != key:
            return replace(built, has_customers=customers)
        with _SETUP_LOCK:
            _SETUP_CACHE.clear()
            _SETUP_CACHE[(database, key)] = cached = built
    return replace(cached, has_customers=customers)
