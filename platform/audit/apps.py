from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Decision trail"

    def ready(self) -> None:
        # Here, not at the top: these modules load models (apps.py is imported before they are ready).
        # The trail's pages are in the menu through the portal app (above this one).
        from axes.signals import user_locked_out

        from audit import signals
        from audit.sealing import payload_blobs_source, rotation_source
        from vault.keys import on_key_event
        from vault.rotation import register_sealed_source

        user_logged_in.connect(signals.trail_login, dispatch_uid="audit.trail_login")
        user_logged_out.connect(signals.trail_logout, dispatch_uid="audit.trail_logout")
        user_login_failed.connect(signals.trail_login_failed, dispatch_uid="audit.trail_login_failed")
        user_locked_out.connect(signals.trail_lockout, dispatch_uid="audit.trail_lockout")
        on_key_event(signals.trail_key_event)  # the vault (below) creates keys; the trail records it
        # Sealed payload texts are append-only: a key rotation re-wraps them into a side table.
        register_sealed_source("audit.payload_texts", rotation_source)
        # Other sealed blobs in payloads (finance's name matches in alert evidence): into SealedCopy.
        register_sealed_source("audit.payload_blobs", payload_blobs_source)
