from django.apps import AppConfig


class FinanceConfig(AppConfig):
    """Anti-money-laundering: ingestion and screening, alerts, cases with four eyes, SAR drafts
    (docs/finance.md)."""

    name = "finance"
    verbose_name = "Finance (AML)"

    def ready(self):
        from finance import corpus
        from finance.datasets import AmlCasesDataAdapter
        from finance.demo import load_demo_finance
        from inference.datasets import CorpusContribution, register, register_corpus
        from portal import demo
        from portal.navigation import NavEntry
        from portal.navigation import register as register_navigation

        register_corpus(CorpusContribution("finance.aml_typologies", corpus.documents, corpus.conversations))
        register(AmlCasesDataAdapter())
        demo.register("finance", order=70)(load_demo_finance)
        register_navigation(
            NavEntry(
                key="finance",
                label="AML alerts",
                url_name="finance:alert_queue",
                description="Screening alerts by risk, cases with their transaction graph, four-eyes "
                "dispositions and SAR drafts.",
                order=30,
            )
        )
