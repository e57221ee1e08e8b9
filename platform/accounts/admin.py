from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import OrgUnit, User


def _token_models():
    from knox.models import AuthToken

    return (AuthToken,)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    fieldsets = BaseUserAdmin.fieldsets + (
        ("Attributes (ABAC)", {"fields": ("department", "site", "certifications")}),
    )
    add_fieldsets = BaseUserAdmin.add_fieldsets + (
        ("Attributes (ABAC)", {"fields": ("department", "site", "groups")}),
    )
    list_display = ("username", "get_full_name", "department", "site", "role_list", "is_active")
    list_filter = ("groups", "department", "site", "is_active")

    @admin.display(description="Roles")
    def role_list(self, obj: User) -> str:
        return ", ".join(sorted(obj.role_names()))


@admin.register(OrgUnit)
class OrgUnitAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "kind")
    list_filter = ("kind",)


# No secrets in the admin: API tokens (knox digests) are managed by their owners only.
for _model in _token_models():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# Periodic tasks and task results are superuser-only: staff administrators manage accounts, not the scheduler.
SUPERUSER_ONLY_APPS = ("django_celery_beat", "django_celery_results")


def _superuser_only(model_admin: admin.ModelAdmin) -> None:
    for name in (
        "has_module_permission",
        "has_view_permission",
        "has_add_permission",
        "has_change_permission",
        "has_delete_permission",
    ):
        original = getattr(model_admin, name)

        def guarded(request, *args, _original=original, **kwargs):
            return bool(request.user.is_active and request.user.is_superuser) and _original(
                request, *args, **kwargs
            )

        setattr(model_admin, name, guarded)


for _model, _model_admin in list(admin.site._registry.items()):
    if _model._meta.app_label in SUPERUSER_ONLY_APPS:
        _superuser_only(_model_admin)

admin.site.site_header = "Suite administration"
admin.site.site_title = "Suite"
