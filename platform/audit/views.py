"""Portal pages of the decision trail, for auditors and compliance officers."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from audit.actors import actor_from_request
from audit.export import export_response
from audit.forms import EventFilterForm, ExportForm
from audit.models import Event
from audit.permissions import (
    DENIAL_MESSAGES,
    EXPORT,
    READ,
    can_export_trail,
    check_trail_access,
    may_unseal,
    trail_page,
    unseal_decision,
)
from audit.sealing import has_sealed_texts, open_texts
from audit.selectors import chain_names, checkpoints_for, events_for, events_for_export
from audit.services import trail_export_log, trail_read_log
from audit.verification import verify_chain, verify_event

PAGE_SIZE = 50


def _require(request: HttpRequest, action: str, chain: str = "*") -> None:
    if not check_trail_access(request, action=action, chain=chain):
        raise PermissionDenied(DENIAL_MESSAGES[action])


@require_GET
@trail_page(READ)  # declares the question the portal's menu asks too
def event_list(request: HttpRequest) -> HttpResponse:
    form = EventFilterForm(request.GET)
    events = events_for(request.user, **form.cleaned_data) if form.is_valid() else Event.objects.none()
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    trail_read_log(
        actor=actor_from_request(request),
        event_ids=[event.id for event in page],
        filters={key: value for key, value in request.GET.items()},
    )
    filters = request.GET.copy()
    filters.pop("page", None)
    export_filters = {key: filters[key] for key in ("chain", "since", "until") if filters.get(key)}
    context = {
        "form": form,
        "page_obj": page,
        "filter_query": filters.urlencode(),
        "export_filters": export_filters,
        "can_export": can_export_trail(request.user),
    }
    return render(request, "audit/event_list.html", context)


@login_required
@require_GET
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    _require(request, READ)
    event = get_object_or_404(events_for(request.user), pk=pk)
    trail_read_log(actor=actor_from_request(request), event_ids=[event.id])
    opened = None
    if has_sealed_texts(event) and request.GET.get("unseal") == "1":
        decision = unseal_decision(request.user, event.resource_type, actor=actor_from_request(request))
        if decision is None or not decision.allowed:
            raise PermissionDenied(
                "The access policy does not let your role open sealed texts of these events."
            )
        opened = open_texts(event)
    context = {
        "event": event,
        "payload_pretty": json.dumps(event.payload, indent=2, ensure_ascii=False, sort_keys=True),
        "verification": verify_event(event),
        "has_sealed_texts": has_sealed_texts(event),
        "opened_texts": opened,
        # the link is offered only where the view would open them (the policy's "unseal", untrailed)
        "can_unseal": opened is None
        and has_sealed_texts(event)
        and may_unseal(request.user, event.resource_type),
    }
    return render(request, "audit/event_detail.html", context)


@login_required
@require_GET
def trail_verify(request: HttpRequest) -> HttpResponse:
    _require(request, READ)
    results = [(verify_chain(name), checkpoints_for(name).first()) for name in chain_names()]
    return render(request, "audit/verify.html", {"results": results})


@login_required
@require_GET
def trail_export(request: HttpRequest) -> HttpResponse:
    form = ExportForm(request.GET)
    _require(request, EXPORT, chain=request.GET.get("chain") or "*")
    if not form.is_valid():
        return HttpResponse(
            "Invalid export request: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            status=400,
            content_type="text/plain",
        )
    export_format = form.cleaned_data["format"] or "jsonl"
    filters = {key: form.cleaned_data[key] or None for key in ("chain", "since", "until")}
    trail_export_log(actor=actor_from_request(request), export_format=export_format, **filters)
    events = events_for_export(request.user, **filters)
    return export_response(events, export_format)
