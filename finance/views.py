"""Compliance officer portal, mounted at /finance/ (namespace "finance"). Thin: parse, call a
selector or a service, render; refusals become messages on the page."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.decisions import decide
from access.errors import PolicyDenied
from access.resources import Resource
from access.web import policy_required
from accounts.models import User
from audit.actors import actor_from_request
from audit.permissions import can_read_trail
from finance import selectors, services
from finance.graph import graph_svg
from finance.home import disposition_label
from finance.models import Case
from finance.services import sar as sar_services
from portal.drafts import new_submission_key

REFUSED = (services.FinanceRefused, PolicyDenied)


def _actor(request):

    return actor_from_request(request)


def _may(user, action: str, resource) -> bool:
    """Whether the policy lets `user` do `action`: the page offers only the forms that would be
    accepted (auditors read every team's records and change nothing). decide() writes no trail."""
    return decide(user, action, resource).allowed


def _team_resource(user, resource_type: str) -> Resource:
    return Resource(resource_type, "new", {"department": user.department})


def _trail_link(user, resource_type: str, pk: int) -> str:
    """The decision trail's page of this record's events, for those who may read the trail ("" else):
    each row of the page's trail table opens the event there (hash, payload, verification)."""
    if not can_read_trail(user):
        return ""
    return f"{reverse('audit:event_list')}?resource_type={resource_type}&resource_id={pk}"


def _refusal(request, error: Exception) -> None:
    if isinstance(error, services.BatchRejected):
        messages.error(request, str(error))
        request.session["finance_batch_errors"] = error.errors[:200]
    elif isinstance(error, PolicyDenied):
        messages.error(request, "The access policy does not allow this.")
    else:
        messages.error(request, str(error))


@require_http_methods(["GET", "POST"])
@policy_required("view", "portal:finance")
def alert_queue(request: HttpRequest) -> HttpResponse:
    """The alert queue (filter, sort by risk or age, SLA ageing, bulk assign) and the batch import form."""
    if request.method == "POST":
        return _import_batch(request)
    params = request.GET
    alerts = list(
        selectors.alerts_visible_to(
            request.user,
            status=params.get("status", ""),
            decision=params.get("decision", ""),
            scenario=params.get("scenario", ""),
            sort=params.get("sort", "risk"),
        )[:200]
    )
    rows = [{"alert": a, "sla": selectors.alert_sla(a)} for a in alerts]
    return render(
        request,
        "finance/alert_queue.html",
        {
            "rows": rows,
            "params": params,
            "batch_errors": request.session.pop("finance_batch_errors", None),
            "may_import": _may(request.user, "screen", _team_resource(request.user, "transaction")),
            "may_assign": _may(request.user, "triage", _team_resource(request.user, "alert")),
            "cases": selectors.cases_visible_to(request.user).exclude(status=Case.Status.CLOSED)[:50],
        },
    )


def _import_batch(request: HttpRequest) -> HttpResponse:
    import uuid

    upload = request.FILES.get("file")
    fmt = request.POST.get("format", "amlworld")
    if upload is None:
        messages.error(request, "Choose a file to import.")
        return redirect("finance:alert_queue")
    batch = uuid.uuid4().hex[:12]
    try:
        parties: dict = {}
        table = services.table_from_file(fmt=fmt, source=upload, batch=batch, parties=parties)
        result = services.transactions_ingest(
            actor=request.user,
            table=table,
            team=request.user.department,
            batch=batch,
            source="portal",
            parties=parties,
        )
    except REFUSED as error:
        _refusal(request, error)
        return redirect("finance:alert_queue")
    messages.success(
        request,
        f"Batch {result.batch}: {result.transactions} transactions screened, {result.alerts} alerts "
        f"({result.holds} held), {result.cases} new cases.",
    )
    return redirect("finance:alert_queue")


@require_POST
@login_required
def alert_assign(request: HttpRequest) -> HttpResponse:

    ids = request.POST.getlist("alert")
    assignee = User.objects.filter(username=request.POST.get("assignee", ""), is_active=True).first()
    if not ids or assignee is None:
        messages.error(request, "Select alerts and name an active officer to assign them to.")
        return redirect("finance:alert_queue")
    alerts = selectors.alerts_for(request.user, ids, action="view", actor=_actor(request))
    try:
        count = services.alerts_assign(actor=request.user, alerts=alerts, assignee=assignee)
    except REFUSED as error:
        _refusal(request, error)
    else:
        messages.success(request, f"{count} alert(s) assigned to {assignee.username}.")
    return redirect("finance:alert_queue")


def _top_contributions(model: dict | None, count: int = 8) -> list[tuple[str, float, float]]:
    """The features that moved the model score most: (name, value, SHAP contribution)."""
    if not model:
        return []
    contributions = {k: v for k, v in model["contributions"].items() if k != "bias"}
    top = sorted(contributions, key=lambda k: -abs(contributions[k]))[:count]
    return [(k, model["features"].get(k), contributions[k]) for k in top]


@require_GET
@login_required
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    alert = selectors.alert_for(request.user, pk, actor=_actor(request))
    replay = None
    if request.GET.get("replay"):
        replay = services.alert_replay(alert_id=alert.pk)
    evidence = alert.evidence
    return render(
        request,
        "finance/alert_detail.html",
        {
            "alert": alert,
            "sla": selectors.alert_sla(alert),
            "rules": evidence.get("rules", []),
            "model": evidence.get("model"),
            "contributions": _top_contributions(evidence.get("model")),
            "names": evidence.get("names", {}),
            "config": evidence.get("config", {}),
            "trail": selectors.trail_for(("alert", alert.pk), ("transaction", alert.transaction_id)),
            "trail_link": _trail_link(request.user, "alert", alert.pk),
            "replay": replay,
        },
    )


@require_http_methods(["GET", "POST"])
@login_required
def case_detail(request: HttpRequest, pk: int) -> HttpResponse:
    case = selectors.case_for(request.user, pk, actor=_actor(request))
    refused_action = ""
    if request.method == "POST":
        response = _case_action(request, case)
        if response is not None:
            return response
        # refused: the page again with what was typed (a note, a reason), not an emptied form
        refused_action = request.POST.get("action", "")
        case.refresh_from_db()
    return render(
        request,
        "finance/case_detail.html",
        {
            "refused_action": refused_action,
            "submission": new_submission_key(),
            "disposition": disposition_label(case),
            "posted": request.POST if refused_action else {},
            "case": case,
            "alerts": case.alerts.select_related("transaction").order_by("-risk"),
            "notes": case.notes.select_related("author").order_by("created_at"),
            "attachments": case.attachments.order_by("created_at"),
            "sars": case.sars.select_related("prepared_by", "approved_by").order_by("pk"),
            "graph": graph_svg(selectors.case_graph(case)),
            "trail": selectors.trail_for(("case", case.pk)),
            "trail_link": _trail_link(request.user, "case", case.pk),
            "dispositions": Case.Disposition.choices,
            "may_approve": case.status == Case.Status.PENDING_CLOSE
            and case.closing_prepared_by_id != request.user.pk
            and _may(request.user, "close", case),
            "may_triage": _may(request.user, "triage", case),
            "may_close": _may(request.user, "close", case),
            "may_sar": _may(request.user, "sar", case),
        },
        status=400 if refused_action else 200,
    )


def _case_action(request: HttpRequest, case: Case) -> HttpResponse | None:
    """Do the posted action and redirect to the case; None when it was refused (the message says why)."""
    action = request.POST.get("action", "")
    user = request.user
    try:
        if action == "note":
            note = services.note_add(
                actor=user,
                case=case,
                text=request.POST.get("text", ""),
                submission_key=request.POST.get("submission", "").strip(),
            )
            if note.replayed:
                messages.info(request, "This note was already sent: it was added once.")
            else:
                messages.success(request, "Note added.")
        elif action == "attach":
            upload = request.FILES.get("file")
            if upload is None:
                raise services.FinanceRefused("Choose a file to attach.")
            attachment = services.attachment_add(
                actor=user, case=case, filename=upload.name, content=upload.read()
            )
            if attachment.replayed:
                messages.info(
                    request, f"This file is already attached to the case, as {attachment.filename}."
                )
            else:
                messages.success(request, "Attachment sealed and added.")
        elif action == "escalate":
            services.case_escalate(actor=user, case=case, reason=request.POST.get("reason", ""))
            messages.success(request, "Case escalated.")
        elif action == "prepare_close":
            services.case_close_prepare(
                actor=user,
                case=case,
                disposition=request.POST.get("disposition", ""),
                reason=request.POST.get("reason", ""),
            )
            messages.success(request, "Closing prepared; a second officer must approve it.")
        elif action == "approve_close":
            services.case_close_approve(actor=user, case=case)
            messages.success(request, "Closing approved; the case is closed.")
        elif action == "reject_close":
            services.case_close_reject(actor=user, case=case, reason=request.POST.get("reason", ""))
            messages.success(request, "Closing sent back; the case is open again.")
        elif action == "draft_sar":
            sar = sar_services.sar_draft(
                actor=user, case=case, use_model=request.POST.get("use_model") != "0"
            )
            return redirect("finance:sar_detail", pk=sar.pk)
        else:
            messages.error(request, "Unknown action.")
    except REFUSED as error:
        _refusal(request, error)
        return None
    return redirect("finance:case_detail", pk=case.pk)


@require_GET
@login_required
def attachment_download(request: HttpRequest, pk: int, attachment_pk: int) -> HttpResponse:
    case = selectors.case_for(request.user, pk, actor=_actor(request))
    attachment = case.attachments.filter(pk=attachment_pk).first()
    if attachment is None:
        return render(request, "404.html", status=404)
    response = HttpResponse(services.attachment_content(attachment), content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{attachment.filename}"'
    return response


@require_http_methods(["GET", "POST"])
@login_required
def sar_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sar = selectors.sar_for(request.user, pk, actor=_actor(request))
    refused_text = None
    if request.method == "POST":
        editing = request.POST.get("action") != "approve"
        try:
            if not editing:
                sar_services.sar_approve(actor=request.user, sar=sar)
                messages.success(request, "SAR approved.")
            else:
                sar_services.sar_edit(actor=request.user, sar=sar, text=request.POST.get("text", ""))
                messages.success(request, "Edit saved (citations and numbers verified).")
        except REFUSED as error:
            _refusal(request, error)
            if editing:  # the page again with the officer's text to correct, not the stored one
                refused_text = request.POST.get("text", "")
        if refused_text is None:
            return redirect("finance:sar_detail", pk=sar.pk)
    return render(
        request,
        "finance/sar_detail.html",
        {
            "refused_text": refused_text,
            "sar": sar,
            "sentences": sar.verification.get("sentences", []),
            "may_edit": sar.status == "draft" and _may(request.user, "sar", sar),
            "may_approve": sar.status == "draft"
            and request.user.username not in sar.editors
            and _may(request.user, "sar", sar),
            "trail": selectors.trail_for(("sar", sar.pk)),
            "trail_link": _trail_link(request.user, "sar", sar.pk),
        },
        status=400 if refused_text is not None else 200,
    )


@require_GET
@login_required
def sar_print(request: HttpRequest, pk: int) -> HttpResponse:
    sar = selectors.sar_for(request.user, pk, actor=_actor(request))
    return render(request, "finance/sar_print.html", {"sar": sar, "facts": sar.facts})


@require_GET
@login_required
def sar_xml(request: HttpRequest, pk: int) -> HttpResponse:
    sar = selectors.sar_for(request.user, pk, actor=_actor(request))
    response = HttpResponse(sar_services.sar_goaml_xml(sar), content_type="application/xml")
    response["Content-Disposition"] = f'attachment; filename="sar-{sar.pk}.xml"'
    return response


@require_http_methods(["GET", "POST"])
@policy_required("view", "portal:finance")
def scenarios(request: HttpRequest) -> HttpResponse:
    from finance.services.scenarios import active_versions_or_seed

    shadow = None
    refused_proposal = False
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "propose":
                import json

                try:
                    params = json.loads(request.POST.get("params") or "{}")
                except ValueError:
                    raise services.FinanceRefused("Parameters must be a JSON object.") from None
                version = services.scenario_version_propose(
                    actor=request.user,
                    code=request.POST.get("code", ""),
                    params=params,
                    note=request.POST.get("note", ""),
                )
                messages.success(request, f"{version.label} proposed; a second officer must approve it.")
            elif action == "approve":
                version = selectors.scenario_version_for(request.user, request.POST.get("version"))
                services.scenario_version_approve(actor=request.user, version=version)
                messages.success(request, f"{version.label} is now active.")
            elif action == "shadow":
                version = selectors.scenario_version_for(request.user, request.POST.get("version"))
                try:
                    since = dt.datetime.fromisoformat(request.POST.get("since", "")).replace(tzinfo=dt.UTC)
                    until = dt.datetime.fromisoformat(request.POST.get("until", "")).replace(tzinfo=dt.UTC)
                except ValueError:
                    raise services.FinanceRefused("Give the period as dates, e.g. 2022-09-01.") from None
                shadow = services.scenario_version_shadow_run(
                    actor=request.user,
                    version=version,
                    since=since,
                    until=until,
                    team=request.user.department or None,
                )
        except REFUSED as error:
            _refusal(request, error)
            refused_proposal = action == "propose"  # shown again with what was typed
        if shadow is None and not refused_proposal:
            return redirect("finance:scenarios")
    active_versions_or_seed()
    return render(
        request,
        "finance/scenarios.html",
        {
            "versions": selectors.scenario_versions_visible_to(request.user),
            "may_propose": _may(request.user, "propose", Resource("scenario", "new")),
            "may_approve": _may(request.user, "approve", Resource("scenario", "new")),
            "shadow": shadow,
            "proposal": request.POST if refused_proposal else {},
        },
        status=400 if refused_proposal else 200,
    )
