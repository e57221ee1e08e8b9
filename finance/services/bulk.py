"""Bulk inserts of database-ready rows at screening volumes (transactions, alerts, counterparties).

``bulk_insert`` skips the ORM's per-object and per-field work, which costs more than the insert
itself at 100,000 rows: multi-row INSERT ... RETURNING id on SQLite (the driver's own cursor and
placeholders), COPY on PostgreSQL for large batches. Ids come back in row order.
"""

from __future__ import annotations

from django.db import connection

COPY_ROWS = 2_000  # PostgreSQL: batches of at least this many rows are sent with COPY


def bulk_insert(model, columns: tuple[str, ...], rows: list[tuple], *, batch_size: int = 500) -> list[int]:
    """Insert rows of database-ready values, multi-row INSERT ... RETURNING id per batch; the ids in
    row order (the order Django's own bulk_create relies on). Skips the ORM's per-field compile,
    which costs more than the insert itself at screening volumes."""
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    if connection.vendor == "postgresql" and len(rows) >= COPY_ROWS:
        return _copy_insert(model, table, names, rows)
    sqlite = connection.vendor == "sqlite"
    one = "(" + ", ".join(["?" if sqlite else "%s"] * len(columns)) + ")"
    ids: list[int] = []
    with connection.cursor() as cursor:
        # SQLite: the driver's own cursor, with its own "?" placeholders: Django's wrapper rewrites
        # every "%s" of a 10,000-value statement with a regex, which cost a third of the insert
        raw = connection.connection.cursor() if sqlite else cursor
        for start in range(0, len(rows), batch_size):
            part = rows[start : start + batch_size]
            raw.execute(
                f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(part))} RETURNING id",  # noqa: S608
                [value for row in part for value in row],
            )
            ids += [r[0] for r in raw.fetchall()]
    return ids


def _copy_insert(model, table: str, names: str, rows: list[tuple]) -> list[int]:
    """PostgreSQL: the ids drawn from the table's own sequence in one query, then the rows (ids
    included) sent with COPY. Multi-row INSERTs bind every value client-side, which at 100,000
    rows cost more than screening them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, len(rows)],
        )
        ids = [r[0] for r in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {table} (id, {names}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows, strict=True):
                copy.write_row((pk, *row))
    return ids
