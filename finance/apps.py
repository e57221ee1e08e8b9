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
        _lend_format1_contexts()
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
        _register_home_panels()


def _register_home_panels() -> None:
    """Four eyes needs the second officer to know something waits for them: their home page says so."""
    from finance import home
    from portal.homes import HomePanel, register_panel
    from portal.navigation import policy_allows

    allowed = policy_allows("view", "portal:finance")
    register_panel(
        HomePanel(
            key="finance-approval",
            title="Waiting for your approval (four eyes)",
            rows=home.awaiting_my_approval,
            order=25,
            allowed=allowed,
        )
    )
    register_panel(
        HomePanel(
            key="finance-mine",
            title="Alerts assigned to you",
            rows=home.my_alerts,
            order=26,
            more_url_name="finance:alert_queue",
            allowed=allowed,
        )
    )


def _lend_format1_contexts() -> None:
    """What each sealed column was sealed with, so `manage.py rotate_keys` can re-seal blobs of the
    vault's format 1 (written before December 2026) under a new KEK version (vault.rotation)."""
    from finance.models import Attachment
    from finance.services.parties import DOB_CONTEXT, IDENTIFIER_CONTEXT, NAME_CONTEXT
    from vault.rotation import register_format1_context

    for place, context in (
        ("finance.Customer.name_sealed", NAME_CONTEXT),
        ("finance.Customer.identifier_sealed", IDENTIFIER_CONTEXT),
        ("finance.Customer.date_of_birth_sealed", DOB_CONTEXT),
        ("finance.Counterparty.name_sealed", NAME_CONTEXT),
    ):
        register_format1_context(place, context)

    def attachment_context(pk) -> bytes | None:  # as finance.services.cases seals it
        case_id = Attachment.objects.filter(pk=pk).values_list("case_id", flat=True).first()
        return None if case_id is None else f"finance.attachment|{case_id}".encode()

    register_format1_context("finance.Attachment.sealed", attachment_context)

    def match_context(_key) -> bytes:  # as finance.services.persist._seal_matches seals each name match
        from finance.services.persist import MATCH_CONTEXT  # (screening code: loaded only when asked)

        return MATCH_CONTEXT

    # the sealed name matches in the alert's evidence, and in its alert.raise event on the trail
    register_format1_context("finance.Alert.evidence", match_context)
    register_format1_context("audit.Event.payload alert.raise", match_context)
