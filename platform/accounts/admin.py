from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, ReadOnlyPasswordHashWidget, UserChangeForm
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from knox.models import AuthToken

from accounts.models import OrgUnit, User


def _unit_choices(*kinds: str):
    def choices() -> list[tuple[str, str]]:
        units = OrgUnit.objects.filter(kind__in=kinds).order_by("kind", "name")
        return [("", "(none)")] + [(unit.code, str(unit)) for unit in units]

    return choices


class CertificationsField(forms.CharField):
    """Certifications as a list, one per line (or comma-separated), stored as a JSON list."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 40})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value) or ""
        items = [item.strip() for line in text.splitlines() for item in line.split(",")]
        return list(dict.fromkeys(item for item in items if item))


class _AttributeFields(forms.ModelForm):
    """Department (or AML team) and site chosen from the organisation's units, not typed."""

    department = forms.ChoiceField(
        required=False, choices=_unit_choices(OrgUnit.Kind.DEPARTMENT, OrgUnit.Kind.TEAM),
        help_text="A department (hospital) or team (AML) of the organisation (Organisation units).",
    )  # fmt: skip
    site = forms.ChoiceField(
        required=False, choices=_unit_choices(OrgUnit.Kind.SITE), help_text="A site of the organisation."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("department", "site"):
            current = getattr(self.instance, name, "")
            field = self.fields.get(name)
            if field is not None and current and current not in dict(field.choices):
                # A code that is no longer an organisation unit stays visible (and selectable) until changed.
                field.choices = [*field.choices, (current, f"{current} (not an organisation unit)")]


class PasswordStateWidget(ReadOnlyPasswordHashWidget):
    """Whether a password is set, and the reset button: no algorithm, salt or hash fragment on the page."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        usable = bool(value) and not value.startswith(UNUSABLE_PASSWORD_PREFIX)
        context["summary"] = [{"label": "A password is set." if usable else "No password set."}]
        return context


class SuiteUserChangeForm(_AttributeFields, UserChangeForm):
    certifications = CertificationsField(
        required=False,
        help_text='One per line, e.g. "board_certified" (the policy\'s certification conditions).',
    )

    class Meta(UserChangeForm.Meta):
        model = User  # every field, as Django's own change form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "password" in self.fields:
            self.fields["password"].widget = PasswordStateWidget()


class SuiteUserCreationForm(_AttributeFields, AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "department", "site", "groups")


def _token_models():
    return (AuthToken,)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = SuiteUserChangeForm
    add_form = SuiteUserCreationForm
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
