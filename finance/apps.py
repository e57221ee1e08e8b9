from django.apps import AppConfig


class FinanceConfig(AppConfig):
    """Anti-money-laundering screening. Built in a later issue; registered now so the layout is fixed."""

    name = "finance"
    verbose_name = "Finance (AML)"

    def ready(self):
        from finance import corpus
        from inference.datasets import CorpusContribution, register_corpus

        register_corpus(CorpusContribution("finance.aml_typologies", corpus.documents, corpus.conversations))
