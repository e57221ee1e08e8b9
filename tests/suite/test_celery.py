"""A real round trip: this process -> broker -> worker process -> database -> result backend."""

import pytest
from django.conf import settings

from suite.tasks import ping


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_task_round_trip_through_a_real_worker(celery_worker):
    result = ping.delay("hello")
    value = result.get(timeout=90)
    assert value["echo"] == "hello"
    assert value["database"] is True
    assert celery_worker.poll() is None, "worker died"
    # The result went through the database result backend the worker shares with us.
    from django_celery_results.models import TaskResult

    assert TaskResult.objects.filter(task_id=result.id, status="SUCCESS").exists()


def test_long_jobs_are_not_redelivered_while_running():
    assert settings.CELERY_TASK_ACKS_LATE
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    if settings.CELERY_BROKER_URL.startswith("redis"):
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] >= 3600
