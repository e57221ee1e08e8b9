from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Decision trail"

    def ready(self) -> None:
        # The trail's pages are in the menu through the portal app (above this one).
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from audit import signals

        user_logged_in.connect(signals.trail_login, dispatch_uid="audit.trail_login")
        user_logged_out.connect(signals.trail_logout, dispatch_uid="audit.trail_logout")
        user_login_failed.connect(signals.trail_login_failed, dispatch_uid="audit.trail_login_failed")
        from axes.signals import user_locked_out

        user_locked_out.connect(signals.trail_lockout, dispatch_uid="audit.trail_lockout")
        from vault.keys import on_key_event

        on_key_event(_trail_key_event)  # the vault (below) creates keys; the trail records it
        from audit.sealing import rotation_source
        from vault.rotation import register_sealed_source

        # Sealed payload texts are append-only: a key rotation re-wraps them into a side table.
        register_sealed_source("audit.payload_texts", rotation_source)


def _trail_key_event(*, action: str, resource_type: str, resource_id: str, payload: dict) -> None:
    from audit.services import record

    record(
        actor="system:vault",
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        outcome="succeeded",
        payload=payload,
    )
