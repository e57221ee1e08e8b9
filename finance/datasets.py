"""The `finance.aml_cases` DataAdapter: closed AML cases as training examples, from the cases the
user may see (under the default policy: their own team's).

Two kinds per case: SAR drafting (the structured facts -> the approved narrative) for cases closed
with an approved SAR, and triage (the alerts' scenarios and risk -> the approved disposition and
its reason) for every closed case.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from access.querysets import restrict
from inference.datasets import TrainingExample

FILTER_KEYS = ("team", "kind")
KINDS = ("sar", "triage")


class AmlCasesDataAdapter:
    name = "finance.aml_cases"
    description = (
        "Closed AML cases with their four-eyes dispositions and approved SAR narratives: facts -> narrative "
        "(SAR drafting) and alerts -> disposition (triage)."
    )
    resource = "model:finance_sar"
    filter_help = 'team (e.g. "aml-eu"), kind ("sar" or "triage")'

    def examples(self, *, user, filters: dict[str, Any]) -> Iterable[TrainingExample]:
        from finance.services.sar import structured_sentences

        kinds = self._kinds(filters)
        for case in self._cases(user, filters).prefetch_related("sars", "alerts__transaction"):
            if "sar" in kinds:
                for sar in case.sars.all():
                    if sar.status != "approved" or not sar.facts:
                        continue
                    yield TrainingExample(
                        source_id=f"sar:{sar.pk}",
                        messages=[
                            {
                                "role": "system",
                                "content": "Write the suspicious activity report narrative from the facts. "
                                "Cite [A<alert>]/[T<transaction>] ids in every sentence; use only the facts' numbers.",
                            },
                            {"role": "user", "content": "\n".join(structured_sentences(sar.facts))},
                            {"role": "assistant", "content": sar.text},
                        ],
                    )
            if "triage" in kinds:
                yield TrainingExample(
                    source_id=f"case:{case.pk}",
                    prompt=_triage_prompt(case),
                    completion=f" {case.disposition}: {case.disposition_reason}".rstrip(": "),
                )

    def describe_query(self, *, user, filters: dict[str, Any]) -> str:
        parts = [f"{key}={filters[key]!r}" for key in FILTER_KEYS if key in filters]
        count = self._cases(user, filters).count()
        return (
            f"Closed AML cases that {user.get_username()} may see ({', '.join(parts) or 'no filters'}): "
            f"{count} cases."
        )

    def _kinds(self, filters) -> tuple[str, ...]:
        kind = filters.get("kind")
        if kind and kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}.")
        return (kind,) if kind else KINDS

    def _cases(self, user, filters: dict[str, Any]):
        from finance.models import Case

        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"Unknown filters {sorted(unknown)}; use {', '.join(FILTER_KEYS)}.")
        queryset = restrict(Case.objects.all(), user, "view").filter(status=Case.Status.CLOSED).order_by("pk")
        if filters.get("team"):
            queryset = queryset.filter(team=filters["team"])
        return queryset


def _triage_prompt(case) -> str:
    lines = [f"AML case on account {case.account}:"]
    for alert in case.alerts.all():
        codes = ", ".join(h["code"] for h in alert.evidence.get("rules", []))
        tx = alert.transaction
        lines.append(
            f"- alert risk {alert.risk:.3f} ({codes}): {tx.amount_paid:,.2f} {tx.currency_paid} {tx.payment_format}"
        )
    lines.append("Disposition:")
    return "\n".join(lines)
