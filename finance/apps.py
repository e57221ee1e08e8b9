from django.apps import AppConfig


class FinanceConfig(AppConfig):
    """Anti-money-laundering: ingestion and screening, alerts, cases with four eyes, SAR drafts
    (docs/finance.md)."""

    name = "finance"
    verbose_name = "Finance (AML)"

    def ready(self):
        from finance import corpus
        from inference.datasets import CorpusContribution, register_corpus
        from portal.navigation import NavEntry, policy_allows
        from portal.navigation import register as register_navigation

        register_corpus(CorpusContribution("finance.aml_typologies", corpus.documents, corpus.conversations))
        register_navigation(
            NavEntry(
                key="finance",
                label="AML alerts",
                url_name="finance:alert_queue",
                roles=frozenset({"compliance_officer", "auditor"}),
                description="Screening alerts by risk, cases with their transaction graph, four-eyes "
                "dispositions and SAR drafts.",
                order=30,
                allowed=policy_allows("view", "portal:finance"),
            )
        )
