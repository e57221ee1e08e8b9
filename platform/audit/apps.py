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
