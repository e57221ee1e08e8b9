from django.apps import AppConfig
from django.db.models.signals import m2m_changed, pre_save
from django.utils.module_loading import autodiscover_modules


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "Access policy"

    def ready(self) -> None:
        # Here, not at the top: these modules load models (apps.py is imported before they are ready).
        from access import checks  # noqa: F401  (registers the system checks)
        from access.approvals import guard_roles_change, guard_user_save
        from access.decisions import decide
        from access.enforcement import trail_decision
        from access.policy import load_at_startup
        from access.resources import register_model, resource_for
        from accounts.models import User
        from audit.permissions import use_policy

        # Four eyes: while serving a request, no save may widen someone's access unapproved.
        pre_save.connect(guard_user_save, sender=User, dispatch_uid="access.four_eyes.user")
        m2m_changed.connect(
            guard_roles_change, sender=User.groups.through, dispatch_uid="access.four_eyes.roles"
        )
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
        # A task's denial, rolled back with the task's transaction, is written again when it fails.
        from celery.signals import task_failure

        task_failure.connect(_trail_task_denial, weak=False, dispatch_uid="access.task_denial")
        # The trail (below this app) checks who may read it with this app's decision function.
        use_policy(decide=decide, trail_decision=trail_decision, resource_for=resource_for)
        # Its portal page (access:explain) is in the menu through the portal app, which sits above
        # this one: the access app imports nothing of the portal.


def _trail_task_denial(sender=None, exception=None, **kwargs) -> None:
    from access.enforcement import trail_denial

    trail_denial(exception)
