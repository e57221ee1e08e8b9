from celery import shared_task
from django.db import connection


@shared_task(name="suite.ping")
def ping(payload: str) -> dict:
    """Round trip through the broker, the worker and the database; used by readiness tests."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {"echo": payload, "database": one == 1, "vendor": connection.vendor}
