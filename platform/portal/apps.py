from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from portal import health
        from portal.homes import HomePanel, register_panel
        from portal.navigation import NavEntry, policy_allows, register

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
        register_panel(
            HomePanel(
                key="installation-health",
                title="Installation health",
                rows=health.installation_rows,
                order=5,
                allowed=policy_allows("view", "portal:health"),
            )
        )
