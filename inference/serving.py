"""What serving a model reads from the registry, cached per process and checked on every request.

A completion needs the model's row (with its draft), whether it is the QA default (the policy's
`qa_default` attribute) and its promoted LoRA adapters (the engine's set, and the one a request may
name). Building those as ORM rows costs two queries' compilation and instantiation on every
request; here one raw statement reads the same data as plain values, and the rows built from them
are kept under that data as the key (as finance's screening configuration is): a model edited,
retired, re-pointed, a draft moved, a default changed, an adapter promoted or demoted, by this
process or any other, by the services or by hand in SQL, changes the key and the next request
builds afresh. A build re-reads the key after it and caches only when nothing changed meanwhile.

The cached rows are shared between requests and threads: callers read them and never save them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from django.db import connection, models
from django.db.models import Exists, OuterRef

from inference.models import LanguageModel, LoraAdapter, ModelDefault

CACHE_SIZE = 32  # models kept per process (least recently served dropped first)


@dataclass(frozen=True)
class Serving:
    model: LanguageModel  # annotated with `policy_qa_default`; `draft` loaded
    adapters: dict[str, LoraAdapter]  # the promoted ones, by name (base_model set to `model`)

    @property
    def adapter_paths(self) -> dict[str, str]:
        return {name: row.path for name, row in self.adapters.items()}


_cache: OrderedDict[tuple, tuple[tuple, Serving]] = OrderedDict()  # (database, name) -> (key, rows)
_lock = threading.Lock()


def _columns(alias: str, model: type[models.Model]) -> list[str]:
    quote = connection.ops.quote_name
    return [
        f"CAST({alias}.{quote(f.column)} AS TEXT)"
        if isinstance(f, models.JSONField)
        else f"{alias}.{quote(f.column)}"
        for f in model._meta.concrete_fields
        if not isinstance(f, models.GeneratedField)
    ]


def _key_query() -> str:
    """One statement: every column of the active model named %s, of its draft and of each promoted
    adapter (one row per adapter), and whether a QA default names the model. Written once per
    database vendor (it depends on nothing else)."""
    query = _key_queries.get(connection.vendor)
    if query is None:
        query = _key_queries[connection.vendor] = _write_key_query()
    return query


_key_queries: dict[str, str] = {}


def _write_key_query() -> str:
    quote = connection.ops.quote_name
    language, adapter, default = (
        quote(LanguageModel._meta.db_table),
        quote(LoraAdapter._meta.db_table),
        quote(ModelDefault._meta.db_table),
    )
    columns = ", ".join(
        _columns("m", LanguageModel) + _columns("d", LanguageModel) + _columns("a", LoraAdapter)
    )
    # identifiers only from the models' own table and column names; every value is a parameter
    return (
        f"SELECT {columns}, (SELECT COUNT(*) FROM {default} q WHERE q.model_id = m.id AND q.qa_default = %s)"  # noqa: S608
        f" FROM {language} m LEFT JOIN {language} d ON d.id = m.draft_id"
        f" LEFT JOIN {adapter} a ON a.base_model_id = m.id AND a.status = %s"
        f" WHERE m.name = %s AND m.is_active = %s"
    )


def _key(name: str) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(_key_query(), ["yes", LoraAdapter.Status.PROMOTED, name, True])
        return tuple(sorted(tuple(str(value) for value in row) for row in cursor.fetchall()))


def _build(name: str) -> Serving | None:
    model = (
        LanguageModel.objects.select_related("draft")
        .annotate(
            policy_qa_default=Exists(ModelDefault.objects.filter(model=OuterRef("pk"), qa_default="yes"))
        )
        .filter(name=name, is_active=True)
        .first()
    )
    if model is None:
        return None
    adapters = {}
    for row in LoraAdapter.objects.filter(base_model=model, status=LoraAdapter.Status.PROMOTED):
        row.base_model = model  # no query when a caller names the adapter's base
        adapters[row.name] = row
    return Serving(model=model, adapters=adapters)


def serving(name: str) -> Serving | None:
    """The active model `name` with its promoted adapters, or None when there is no such model."""
    key = _key(name)
    if not key:
        return None
    slot = (connection.vendor, str(connection.settings_dict.get("NAME")), connection.alias, name)
    with _lock:
        cached = _cache.get(slot)
        if cached is not None and cached[0] == key:
            _cache.move_to_end(slot)
            return cached[1]
    built = _build(name)
    if built is None or _key(name) != key:  # changed while it was built: used once, not cached
        return built
    with _lock:
        _cache[slot] = (key, built)
        _cache.move_to_end(slot)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return built
