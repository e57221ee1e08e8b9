import json

import pytest
from django.core.management import call_command

from accounts.roles import Role


def test_plan_capacity_command_reproduces_the_70b_figures(capsys):
    call_command("plan_capacity", "--params", "70e9", "--layers", "80", "--hidden", "8192", "--kv-heads", "8",
                 "--heads", "64", "--context", "8192", "--batch", "8", "--quant", "fp32", "--json")  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert round(data["weight_bytes"] / 1e9) == 280  # the rule's "~280 GB fp32-equivalent"
    h100 = next(f for f in data["fits"] if f["accelerator"] == "H100 80GB")
    assert h100["devices"] == 8  # the rule's 8x H100
    # Decode is memory-bound: the bound is bandwidth over bytes read per step.
    bytes_per_step = data["weight_bytes"] + data["kv_cache_bytes"]
    assert h100["decode_tokens_per_s_per_sequence"] == pytest.approx(8 * 3.35e12 / bytes_per_step, rel=0.01)


def test_plan_capacity_needs_a_shape(capsys):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--layers"):
        call_command("plan_capacity", "--params", "7e9")


@pytest.mark.django_db
def test_capacity_page(client, make_user):
    client.force_login(make_user(Role.ML_ENGINEER))
    page = client.get("/models/capacity/", {"params": "7e9", "layers": "32", "hidden": "4096", "kv_heads": "32",
                                            "heads": "32", "context": "4096", "batch": "1", "quant": "fp16"})  # fmt: skip
    assert page.status_code == 200
    assert b'data-testid="weights-gb">14.0 GB' in page.content
    bad = client.get("/models/capacity/", {"params": "lots"})
    assert bad.status_code == 400 and b"Check the numbers" in bad.content
