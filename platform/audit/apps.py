from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Decision trail"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from audit import signals
        from audit.permissions import can_read_trail
        from portal.navigation import NavEntry, register

        user_logged_in.connect(signals.trail_login, dispatch_uid="audit.trail_login")
        user_logged_out.connect(signals.trail_logout, dispatch_uid="audit.trail_logout")
        user_login_failed.connect(signals.trail_login_failed, dispatch_uid="audit.trail_login_failed")

        register(
            NavEntry(
                key="audit-trail",
                label="Decision trail",
                url_name="audit:event_list",
                description="Who decided what, when and why: filter, verify and export the tamper-evident trail.",
                order=80,
                allowed=can_read_trail,
            )
        )
