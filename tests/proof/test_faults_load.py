"""Load: `bench_load --json` with tiny bounds against a real gunicorn server on the test database.

At the concurrency the admission control admits no request fails and nothing answers 5xx; beyond
it (more chat clients than the model's slots plus queue) the excess is refused with 429 and a
Retry-After header. The figures themselves are the command's output (docs/reliability.md), not
asserted here.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from inference.models import LanguageModel
from manufacturing.models import Line, Machine, Site
from medical.models import Study
from medical.services import IngestSource, instance_ingest
from tests.medical.dicom_files import file_bytes

pytestmark = pytest.mark.django_db(transaction=True)  # the server subprocess reads committed rows


@pytest.fixture
def load_targets(make_user, served_model):
    users = {
        "chat": make_user("ml_engineer", username="load-ml", department="radiology"),
        "qa": make_user("radiologist", username="load-rad", department="radiology"),
        "screen": make_user("compliance_officer", username="load-aml", department="aml-eu"),
        "work_orders": make_user("maintenance_engineer", username="load-mnt", site="site-a"),
    }
    # A short queue keeps the overload phase small: 1 slot + 2 waiting, so 3 clients are admitted.
    LanguageModel.objects.filter(pk=served_model.pk).update(max_queue=2)
    source = IngestSource(channel="api", department="radiology", actor="test:load", received_from="tests",
                          previews="skip")  # fmt: skip
    study = Study.objects.get(pk=instance_ingest(source=source, filename="CT_small.dcm",
                                                 data=file_bytes("CT_small.dcm")).study_id)  # fmt: skip
    site, _ = Site.objects.get_or_create(code="site-a", defaults={"name": "SITE-A"})
    machine = Machine.objects.create(
        line=Line.objects.create(site=site, name="Line 1"), tag="LOAD01", name="Pump"
    )
    return users, study, machine


def test_bench_load_admits_without_errors_and_refuses_the_excess_with_retry_after(load_targets):
    users, study, machine = load_targets
    out = StringIO()
    call_command(
        "bench_load", "--json", "--seconds", "3", "--clients", "2", "--overload-extra", "3",
        "--max-tokens", "4", "--timeout", "60", "--model", "suite-demo", "--study", str(study.pk),
        "--machine", str(machine.pk), "--chat-user", "load-ml", "--qa-user", "load-rad",
        "--screen-user", "load-aml", "--work-order-user", "load-mnt",
        stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    every = [(phase, name, tally) for phase, run in result["phases"].items() for name, tally in run["endpoints"].items()]  # fmt: skip
    assert result["errors"] == 0, json.dumps(result, indent=2)
    for phase, name, tally in every:
        assert not any(status.startswith("5") or status == "failed" for status in tally["statuses"]), (
            phase,
            name,
        )
    admitted = result["phases"]["admitted"]["endpoints"]
    assert set(admitted) == {"chat_completions", "transaction_screening", "dicom_qa", "work_order_create"}
    assert all(tally["succeeded"] > 0 and tally["p50_ms"] <= tally["p99_ms"] for tally in admitted.values())
    assert admitted["chat_completions"]["clients"] == 3 == result["admission"]["model_max_concurrency"] + 2
    overload = result["phases"]["overload"]["endpoints"]["chat_completions"]
    assert overload["clients"] == 6 and overload["refused_429"] > 0 and overload["retry_after_s_max"] >= 1
    # What the clients created exists, once each: the server wrote to this database.
    created = admitted["work_order_create"]["succeeded"]
    assert machine.work_orders.count() == created + 1 > 1  # and the warm-up request's one
