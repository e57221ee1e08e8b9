from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    """Predictive maintenance. Built in a later issue; registered now so the layout is fixed."""

    name = "manufacturing"
    verbose_name = "Manufacturing"

    def ready(self):
        from inference.datasets import CorpusContribution, register_corpus
        from manufacturing import corpus

        register_corpus(
            CorpusContribution("manufacturing.work_orders", corpus.documents, corpus.conversations)
        )
