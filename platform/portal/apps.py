from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        # Here, not at the top: Django imports apps.py before the app registry is ready, and the
        # wiring loads models (access.decisions, portal.services).
        from portal import wiring

        wiring.connect()
