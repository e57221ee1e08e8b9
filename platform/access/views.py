"""Portal pages: explain a decision of the access policy (administrators and auditors); second-person
approvals of actions the policy gives only with one, and the account changes waiting for a second
administrator (everyone signed in; the services decide)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from access.approvals import (
    account_changes_awaiting,
    action_approval_approve,
    action_approval_reject,
    action_approval_request,
    approvals_waiting_for,
)
from access.forms import ApprovalRequestForm, ExplainForm
from access.models import ActionApproval
from access.policy import POLICY_RESOURCE_NAME
from access.selectors import ExplainError, explain
from access.web import policy_required


@require_GET
@policy_required("explain", f"policy:{POLICY_RESOURCE_NAME}")
def explain_page(request: HttpRequest) -> HttpResponse:
    form = ExplainForm(request.GET or None)
    explanation = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            explanation = explain(
                username=data["user"],
                action=data["action"],
                resource=data["resource"],
                resource_type=data["resource_type"],
                resource_id=data["resource_id"],
            )
        except ExplainError as error:
            field = error.field if error.field in form.fields else None
            form.add_error(field, str(error))
    return render(request, "access/explain.html", {"form": form, "explanation": explanation})


@require_http_methods(["GET", "POST"])
@policy_required("view", "portal:account")  # everyone signed in: the services decide each step
def approvals_page(request: HttpRequest) -> HttpResponse:
    """Second-person approvals: ask for one (with a reason), and approve or refuse colleagues' requests."""
    form = ApprovalRequestForm(
        request.POST if request.POST.get("do") == "request" else None,
        # Pages that send people here (a study's break-glass card) fill in what they ask about.
        initial={
            key: request.GET[key] for key in ("action", "resource_type", "resource_id") if key in request.GET
        },
    )
    if request.method == "POST":
        try:
            if request.POST.get("do") == "request":
                if form.is_valid():
                    data = form.cleaned_data
                    approval = action_approval_request(
                        user=request.user,
                        action=data["action"],
                        resource=form.resource(),
                        reason=data["reason"],
                    )
                    messages.success(
                        request, f"Asked for approval #{approval.pk}; a colleague must approve it."
                    )
                    return redirect("access:approvals")
            else:
                approval = get_object_or_404(ActionApproval, pk=request.POST.get("approval"))
                decide_one = (
                    action_approval_approve if request.POST.get("do") == "approve" else action_approval_reject
                )
                done = decide_one(approver=request.user, approval=approval)
                messages.success(request, f"Approval #{done.pk}: {done.get_state_display().lower()}.")
                return redirect("access:approvals")
        except ValidationError as error:
            form.add_error(None, "; ".join(error.messages))
            status = 400
        except PermissionDenied as error:
            form.add_error(None, str(error))
            status = 403
        else:
            status = 400
    else:
        status = 200
    context = {
        "form": form,
        "waiting": approvals_waiting_for(request.user),
        "account_changes": account_changes_awaiting(request.user),
        "mine": ActionApproval.objects.filter(requester=request.user).select_related("approver")[:50],
    }
    return render(request, "access/approvals.html", context, status=status)
