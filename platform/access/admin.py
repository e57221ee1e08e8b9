"""Four eyes in the Django admin: widening edits of a user are held until a second administrator approves.

The accounts app (below this one) registers the user admin; this app wraps it so that the parts
of an edit that widen access (access.approvals.split_widening) are saved as a pending request
instead, and adds the queue of pending requests with approve and reject actions.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError

from access.approvals import (
    account_change_approve,
    account_change_reject,
    account_change_request,
    split_widening,
)
from access.models import AccountChangeRequest
from accounts.admin import UserAdmin

User = get_user_model()
HELD_ATTRIBUTE = "_four_eyes_held"


class FourEyesUserAdmin(UserAdmin):
    def save_model(self, request, obj, form, change):
        held, before_values = {}, {}
        if change:
            stored = User.objects.get(pk=obj.pk)
            before_values = {
                "department": stored.department,
                "certifications": list(stored.certifications or []),
                "is_active": stored.is_active,
                "is_staff": stored.is_staff,
                "is_superuser": stored.is_superuser,
            }
            after = {
                "department": obj.department,
                "certifications": list(obj.certifications or []),
                "is_active": obj.is_active,
                "is_staff": obj.is_staff,
                "is_superuser": obj.is_superuser,
            }
            held, _ = split_widening(before=before_values, after=after, roles_before=set(), roles_after=set())
            # Save everything else now; the widening part waits for the second administrator.
            if "department" in held:
                obj.department = stored.department
            if "certifications_add" in held:
                obj.certifications = [c for c in obj.certifications if c not in held["certifications_add"]]
            for flag in ("is_active", "is_staff", "is_superuser"):
                if held.get(flag):
                    setattr(obj, flag, False)
        elif obj.is_staff or obj.is_superuser:
            held.update({flag: True for flag in ("is_staff", "is_superuser") if getattr(obj, flag)})
            obj.is_staff = obj.is_superuser = False
        setattr(request, HELD_ATTRIBUTE, held)
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        held = dict(getattr(request, HELD_ATTRIBUTE, {}))
        if "groups" in form.cleaned_data:
            current = set(form.instance.groups.values_list("name", flat=True)) if change else set()
            requested = list(form.cleaned_data["groups"])
            added = sorted(group.name for group in requested if group.name not in current)
            if added:
                held["roles_add"] = added
                form.cleaned_data["groups"] = [group for group in requested if group.name in current]
        super().save_related(request, form, formsets, change)
        if held:
            pending = account_change_request(requested_by=request.user, target=form.instance, change=held)
            self.message_user(
                request,
                f"Saved, except what widens access ({pending.summary()}): it takes effect when a second "
                f"administrator approves change request #{pending.pk} (Account change requests).",
                messages.WARNING,
            )


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, FourEyesUserAdmin)


@admin.register(AccountChangeRequest)
class AccountChangeRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "target", "summary", "requested_by", "requested_at", "state", "decided_by")
    list_filter = ("state",)
    readonly_fields = [field.name for field in AccountChangeRequest._meta.fields]
    actions = ["approve", "reject"]

    def has_add_permission(self, request):
        return False  # requests come from edits of users

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Change")
    def summary(self, obj: AccountChangeRequest) -> str:
        return obj.summary()

    @admin.action(description="Approve the selected changes (you must not be the requester)")
    def approve(self, request, queryset):
        self._decide(
            request, queryset, lambda item: account_change_approve(approver=request.user, change_request=item)
        )

    @admin.action(description="Reject the selected changes")
    def reject(self, request, queryset):
        self._decide(
            request, queryset, lambda item: account_change_reject(approver=request.user, change_request=item)
        )

    def _decide(self, request, queryset, decide_one) -> None:
        for item in queryset.select_related("target", "requested_by"):
            try:
                done = decide_one(item)
            except (PermissionDenied, ValidationError) as error:
                text = "; ".join(error.messages) if isinstance(error, ValidationError) else str(error)
                self.message_user(request, f"Change request #{item.pk}: {text}", messages.ERROR)
            else:
                self.message_user(request, f"Change request #{done.pk}: {done.get_state_display().lower()}.")
