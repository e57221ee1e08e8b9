from django.apps import AppConfig


class MedicalConfig(AppConfig):
    """DICOM ingest (upload, C-STORE), de-identification, studies, grounded QA, clinician portal.

    The study resource type and its actions are registered with the access vocabulary in
    medical/policy_actions.py.
    """

    name = "medical"
    verbose_name = "Medical imaging"

    def ready(self) -> None:
        from inference.datasets import CorpusContribution, register, register_corpus
        from medical import corpus, home
        from medical.datasets import DicomQaDataAdapter
        from medical.demo import load_demo_studies
        from medical.storage import format1_context
        from portal import demo
        from portal.homes import HomePanel, register_panel
        from portal.navigation import NavEntry
        from portal.navigation import register as register_navigation
        from vault.rotation import FILES, register_format1_context

        # rotate_keys re-seals format 1 originals, quarantined uploads and the UID key file with it.
        register_format1_context(FILES, format1_context)

        register_navigation(
            NavEntry(
                key="studies",
                label="Studies",
                url_name="medical:study_list",
                description="De-identified studies of your department: viewer, questions answered from the "
                "DICOM header, upload.",
                order=10,
                allowed=_may_open_studies,
            )
        )
        demo.register("medical studies", order=50)(load_demo_studies)
        register_panel(
            HomePanel(
                key="medical-break-glass",
                title="Break-glass access to your department's originals",
                rows=home.break_glass_notices,
                order=5,
                allowed=_may_open_studies,
            )
        )
        register_panel(
            HomePanel(
                key="medical-review",
                title="Awaiting your burned-in text review",
                rows=home.awaiting_review,
                order=10,
                allowed=_may_open_studies,
            )
        )
        register_panel(
            HomePanel(
                key="medical-recent",
                title="Recent studies",
                rows=home.recent_studies,
                order=20,
                more_url_name="medical:study_list",
                empty_text="No study yet: upload one from the Studies page, or have a modality send it.",
                allowed=_may_open_studies,
            )
        )
        register(DicomQaDataAdapter())
        _register_dicom_node()
        _register_pending_previews()
        register_corpus(CorpusContribution("medical.dicom", corpus.documents, corpus.conversations))


def _register_dicom_node() -> None:
    """`run_suite` (make run) also starts the DICOM node, unless DICOM_SCP_PORT is 0."""
    from django.conf import settings

    from ops.processes import SuiteProcess, register

    port = getattr(settings, "DICOM_SCP_PORT", 0)
    if port:
        host = getattr(settings, "DICOM_SCP_HOST", "127.0.0.1")
        register(SuiteProcess("dicom", ("run_dicom_scp", "--host", host, "--port", str(port))))


def _register_pending_previews() -> None:
    """A preview whose message a broker outage lost is sent again (portal.requeue; the render is idempotent)."""
    from medical.models import Instance
    from portal.requeue import PendingWork, register

    register(
        PendingWork(
            "medical.preview",
            "medical.render_instance_preview",
            lambda cutoff: Instance.objects.filter(
                preview_status=Instance.PreviewStatus.PENDING, created_at__lt=cutoff
            ),
        )
    )


def _may_open_studies(user) -> bool:
    from access.decisions import decide

    return decide(user, "view", "portal:medical").allowed
