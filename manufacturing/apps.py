from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    """Predictive maintenance: assets, condition data, alerts and work orders (docs/manufacturing.md)."""

    name = "manufacturing"
    verbose_name = "Manufacturing"

    def ready(self):
        from inference.datasets import CorpusContribution, register, register_corpus
        from manufacturing import corpus
        from manufacturing.datasets import WorkOrdersDataAdapter
        from manufacturing.demo import load_demo_manufacturing
        from portal import demo

        register(WorkOrdersDataAdapter())
        demo.register("manufacturing", order=60)(load_demo_manufacturing)

        register_corpus(
            CorpusContribution("manufacturing.work_orders", corpus.documents, corpus.conversations)
        )
