"""Scale-out: an import partitioned by payer account over a real Celery worker stores the file once,
with the decisions of a single-process import of the same rows."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from finance.models import Alert, Transaction
from tests.finance.conftest import TEAM, structuring_rows

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _rows(prefix: str) -> list[dict]:
    rows = []
    for k in range(6):
        for row in structuring_rows(
            prefix=f"{prefix}{k}-", account=f"{prefix}ACC-{k}", start=1_700_000_000 + k * 50
        ):
            row["tx_ref"] = row["tx_ref"]
            rows.append(row)
    return rows


def test_partitions_on_a_worker_store_the_file_once(tmp_path, celery_worker, capsys):
    single, split = tmp_path / "single.json", tmp_path / "split.json"
    single.write_text(json.dumps(_rows("a")))
    split.write_text(json.dumps(_rows("b")))
    call_command("import_transactions", str(single), "--format", "json", "--team", TEAM, "--batch", "one")
    call_command(
        "import_transactions",
        str(split),
        "--format",
        "json",
        "--team",
        TEAM,
        "--batch",
        "two",
        "--partitions",
        "2",
    )
    assert "on 2 partitions" in capsys.readouterr().out
    one = {
        r[1:]: (d, v)
        for r, d, v in Transaction.objects.filter(batch="one").values_list("tx_ref", "decision", "risk")
    }
    two = {
        r[1:]: (d, v)
        for r, d, v in Transaction.objects.filter(batch="two").values_list("tx_ref", "decision", "risk")
    }
    assert len(one) == len(two) == 24 and one == two
    assert (
        Alert.objects.filter(transaction__batch="two").count()
        == Alert.objects.filter(transaction__batch="one").count()
        > 0
    )
