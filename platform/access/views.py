"""Portal page: explain a decision of the access policy (administrators and auditors)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from access.forms import ExplainForm
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
