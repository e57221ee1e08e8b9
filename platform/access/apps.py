from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Access policy"

    def ready(self) -> None:
        from django.utils.module_loading import autodiscover_modules

        from access import checks  # noqa: F401  (registers the system checks)
        from access.policy import load_at_startup
        from access.resources import register_model
        from accounts.models import User

        register_model(
            User,
            resource_type="user",
            name_field="username",
            attribute_fields={"department": "department", "site": "site"},
        )
        # Apps extend the action vocabulary in <app>/policy_actions.py: import them all before the
        # policy is validated, whatever the order of INSTALLED_APPS.
        autodiscover_modules("policy_actions")
        # A malformed policy stops start-up here (ImproperlyConfigured naming the file and line).
        load_at_startup()
        _register_navigation()


def _may_explain(user) -> bool:
    from access.decisions import decide
    from access.policy import POLICY_RESOURCE_NAME

    return decide(user, "explain", f"policy:{POLICY_RESOURCE_NAME}").allowed


def _register_navigation() -> None:
    from portal.navigation import NavEntry, register

    register(
        NavEntry(
            key="access-explain",
            label="Access policy",
            url_name="access:explain",
            roles=frozenset({"auditor", "admin"}),
            description="Ask the access policy why a user may or may not do something.",
            order=85,
            allowed=_may_explain,
        )
    )
