from django.apps import AppConfig


class ManufacturingConfig(AppConfig):
    """Predictive maintenance: assets, condition data, alerts and work orders (docs/manufacturing.md)."""

    name = "manufacturing"
    verbose_name = "Manufacturing"

    def ready(self):
        from inference.datasets import CorpusContribution, register, register_corpus
        from manufacturing import corpus, home
        from manufacturing.datasets import WorkOrdersDataAdapter
        from manufacturing.demo import load_demo_manufacturing
        from portal import demo
        from portal.homes import HomePanel, register_panel
        from portal.navigation import NavEntry, policy_allows
        from portal.navigation import register as register_navigation

        register(WorkOrdersDataAdapter())
        _register_pending_analyses()
        demo.register("manufacturing", order=60)(load_demo_manufacturing)
        allowed = policy_allows("view", "portal:manufacturing")
        register_navigation(
            NavEntry(
                key="maintenance",
                label="Maintenance",
                url_name="manufacturing:asset_list",
                roles=frozenset({"maintenance_engineer"}),
                description="Your site's assets with vibration and remaining-life condition, alerts, work "
                "orders, inspections and the assistant.",
                order=40,
                allowed=allowed,
            )
        )
        register_panel(
            HomePanel(
                key="manufacturing-alerts",
                title="Open alerts at your site",
                rows=home.open_alerts,
                order=30,
                more_url_name="manufacturing:asset_list",
                empty_text="No open alert.",
                allowed=allowed,
            )
        )
        register_panel(
            HomePanel(
                key="manufacturing-mine",
                title="Work orders assigned to you",
                rows=home.my_work_orders,
                order=31,
                more_url_name="manufacturing:work_order_list",
                allowed=allowed,
            )
        )

        register_corpus(
            CorpusContribution("manufacturing.work_orders", corpus.documents, corpus.conversations)
        )


def _register_pending_analyses() -> None:
    """An analysis or a scan registration whose message a broker outage lost is sent again
    (portal.requeue; recording_analyse and scan_register leave what is no longer pending alone)."""
    from manufacturing.models import ScanComparison, VibrationRecording
    from portal.requeue import PendingWork, register

    register(
        PendingWork(
            "manufacturing.analysis",
            "manufacturing.analyse_recording",
            lambda cutoff: VibrationRecording.objects.filter(
                status=VibrationRecording.Status.PENDING, created_at__lt=cutoff
            ),
        )
    )
    register(
        PendingWork(
            "manufacturing.scan",
            "manufacturing.register_scan",
            lambda cutoff: ScanComparison.objects.filter(
                status=ScanComparison.Status.PENDING, created_at__lt=cutoff
            ),
        )
    )
