"""The `manufacturing.work_orders` DataAdapter: closed work orders with a failure mode code as
training examples (problem text -> failure mode), from the work orders the user may see
(under the default policy: their own site's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from access.querysets import restrict
from inference.datasets import TrainingExample

FILTER_KEYS = ("site", "preventive")
PROMPT = "Maintenance work order on {equipment}: {text}\nFailure mode code:"


class WorkOrdersDataAdapter:
    name = "manufacturing.work_orders"
    description = (
        "Closed maintenance work orders with their failure mode code (ISO 14224 style): the problem "
        "text as prompt, the code and its description as completion."
    )
    resource = "model:manufacturing_failure_codes"
    filter_help = 'site (e.g. "site-a"), preventive (true/false)'

    def examples(self, *, user, filters: dict[str, Any]) -> Iterable[TrainingExample]:
        from manufacturing.models import FailureCode

        names = dict(
            FailureCode.objects.filter(kind=FailureCode.Kind.MODE).values_list("code", "description")
        )
        for work_order in self._work_orders(user, filters).iterator():
            code = work_order.failure_mode
            completion = f" {code} {names[code]}" if code in names else f" {code}"
            yield TrainingExample(
                source_id=f"work_order:{work_order.pk}",
                prompt=PROMPT.format(
                    equipment=work_order.equipment_label or "equipment",
                    text=(work_order.description or work_order.title).strip(),
                ),
                completion=completion,
            )

    def describe_query(self, *, user, filters: dict[str, Any]) -> str:
        parts = [f"{key}={filters[key]!r}" for key in FILTER_KEYS if key in filters]
        count = self._work_orders(user, filters).count()
        return (
            f"Closed work orders with a failure mode that {user.get_username()} may see "
            f"({', '.join(parts) or 'no filters'}): {count} work orders."
        )

    def _work_orders(self, user, filters: dict[str, Any]):
        from manufacturing.models import WorkOrder

        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"Unknown filters {sorted(unknown)}; use {', '.join(FILTER_KEYS)}.")
        queryset = (
            restrict(WorkOrder.objects.all(), user, "view")
            .filter(status=WorkOrder.Status.COMPLETE)
            .exclude(failure_mode="")
            .order_by("pk")
        )
        if filters.get("site"):
            queryset = queryset.filter(site=filters["site"])
        if "preventive" in filters:
            queryset = queryset.filter(preventive=bool(filters["preventive"]))
        return queryset
