"""The manufacturing.work_orders DataAdapter: closed coded work orders of the user's site only."""

from __future__ import annotations

import pytest

from inference.datasets import get
from manufacturing.models import WorkOrder

pytestmark = pytest.mark.django_db


def test_examples_are_site_scoped_and_coded(engineer_a, engineer_b, failure_codes):
    common = {"status": "complete", "title": "Bearing noisy", "description": "DE bearing noisy and hot"}
    WorkOrder.objects.create(site="site-a", failure_mode="M001a", equipment_label="Chiller 9", **common)
    WorkOrder.objects.create(site="site-a", failure_mode="", **common)
    WorkOrder.objects.create(site="site-a", failure_mode="M001a", **{**common, "status": "open"})
    WorkOrder.objects.create(site="site-b", failure_mode="M001b", **common)
    adapter = get("manufacturing.work_orders")
    examples = list(adapter.examples(user=engineer_a, filters={}))
    assert len(examples) == 1
    assert "Chiller 9" in examples[0].prompt and examples[0].completion == " M001a Cracking in Piping"
    assert [e.completion for e in adapter.examples(user=engineer_b, filters={})] == [
        " M001b Cracking in Structural Frame"
    ]
    assert "1 work orders" in adapter.describe_query(user=engineer_a, filters={})
    with pytest.raises(ValueError, match="Unknown filters"):
        list(adapter.examples(user=engineer_a, filters={"colour": "red"}))
