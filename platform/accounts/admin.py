from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import OrgUnit, User


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


admin.site.site_header = "Suite administration"
admin.site.site_title = "Suite"
