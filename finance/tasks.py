"""Celery tasks of the finance app: they receive a file and a partition, load, call one service."""

from __future__ import annotations

from celery import shared_task

from finance.services.ingest import table_from_file, transactions_ingest


@shared_task(name="finance.screen_file_partition", ignore_result=False)
def screen_file_partition(path: str, fmt: str, team: str, batch: str, part: int, parts: int) -> dict:
    """Screen and store partition ``part`` of ``parts`` (by payer account) of a transaction file
    every worker can read; the rest of the file is read-only history (see transactions_ingest)."""
    parties: dict = {}
    table = table_from_file(fmt=fmt, source=path, batch=batch, parties=parties, partitioned=True)
    result = transactions_ingest(
        actor="task:finance.screen_file_partition",
        table=table,
        team=team,
        batch=batch,
        source=f"file:{fmt}:partition {part}/{parts}",
        parties=parties,
        partition=(part, parts),
    )
    return {"part": part, "transactions": result.transactions, "alerts": result.alerts, "cases": result.cases}
