from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import OrgUnit, User


def _token_models():
    from knox.models import AuthToken
    from rest_framework.authtoken.models import Token, TokenProxy

    return (AuthToken, Token, TokenProxy)


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


# No secrets in the admin: API tokens (legacy keys in clear, knox digests) are managed by their owners only.
for _model in _token_models():
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

admin.site.site_header = "Suite administration"
admin.site.site_title = "Suite"
