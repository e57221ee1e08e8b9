from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from portal.navigation import NavEntry, register

        register(
            NavEntry(
                key="admin",
                label="Administration",
                url_name="admin:index",
                roles=frozenset({"admin"}),
                description="Users, roles and attributes, organisation units.",
                order=900,
            )
        )
