"""Clinician portal pages (mounted at /medical/): study list, study page (viewer + QA chat), upload.

Thin: parse, authorize through the selectors and services, render. A study of another department
is a 404, as in the API (medical.selectors explains why).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access.decisions import decide
from access.resources import Resource
from access.web import enforce_for_request, policy_required
from medical import selectors, services
from medical.api import frame_response, original_response, preview_response
from medical.dicom.frames import COLOUR_INTERPRETATIONS, presets_for
from medical.forms import BreakGlassForm, BurnedInReviewForm, ShareForm, StudyFilterForm, UploadForm
from medical.models import Channel, Study
from ops.broker import broker_required_for_post

STUDIES_PER_PAGE = 25


def _actor(request: HttpRequest):
    from audit.actors import actor_from_request

    return actor_from_request(request)


@require_GET
@policy_required("view", "portal:medical")
def study_list(request: HttpRequest) -> HttpResponse:
    form = StudyFilterForm(request.GET or None)
    studies = selectors.studies_visible_to(request.user, filters=form.filters())
    page = Paginator(studies, STUDIES_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "medical/study_list.html",
        {
            "form": form,
            "active_filters": form.active(),
            "page": page,
            "rows": [(study, selectors.study_row(study)) for study in page],
            "query": query.urlencode(),
            "may_upload": _may_upload(request.user),
        },
    )


@require_GET
@login_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = selectors.study_for(request.user, pk, actor=_actor(request))
    return render(request, "medical/study_detail.html", _detail_context(request, study))


def _detail_context(request: HttpRequest, study: Study, **forms) -> dict:
    user = request.user
    series = selectors.study_series(study)
    instances = [instance for item in series for instance in item.instances.all()]
    review_pending = study.burned_in_review != Study.BurnedInReview.NOT_REQUIRED
    break_glass = decide(user, "break_glass", study)
    return {
        "study": study,
        # Pixels that may show identifying text stay hidden behind a warning until reviewed and cleared.
        "masked": study.burned_in_review in (Study.BurnedInReview.PENDING, Study.BurnedInReview.WITHHELD),
        "series": series,
        "instances": instances,
        "previews_pending": any(
            instance.preview_status == instance.PreviewStatus.PENDING for instance in instances
        ),
        "viewer_stacks": _viewer_stacks(series),
        "questions": selectors.study_questions(study),
        "shared_with": selectors.study_shared_with(study),
        "may_share": bool(decide(user, "share", study)),
        "may_unshare": bool(decide(user, "unshare", study)),
        "may_review": review_pending and bool(decide(user, "review", study)),
        "may_break_glass": bool(break_glass),
        # The policy gives break-glass only with a colleague's approval (require_approval): say where to ask.
        "break_glass_needs_approval": break_glass.approval_required,
        "share_form": forms.get("share_form") or ShareForm(),
        "review_form": forms.get("review_form") or BurnedInReviewForm(),
        "break_glass_form": forms.get("break_glass_form") or BreakGlassForm(),
    }


def _viewer_stacks(series) -> list[dict]:
    """What the viewer scrolls through: per series, its images with pixels and their frames, in order."""
    stacks = []
    for item in series:
        images = [
            {
                "id": instance.pk,
                "frames": max(1, instance.number_of_frames or 1),
                "label": f"image {instance.instance_number or instance.pk}",
                "inverted": instance.photometric_interpretation.upper() == "MONOCHROME1",
                "url": reverse("medical:instance_frame", args=[instance.pk, 0]).removesuffix("0.png"),
            }
            for instance in item.instances.all()
            if instance.has_pixel_data and instance.preview_status != instance.PreviewStatus.UNAVAILABLE
        ]
        if not images:
            continue
        colour = any(
            instance.photometric_interpretation.upper() in COLOUR_INTERPRETATIONS
            for instance in item.instances.all()
        )
        presets = [
            {"name": preset.name, "label": preset.label}
            | ({"center": preset.window.center, "width": preset.window.width} if preset.window else {})
            for preset in presets_for(item.modality, colour=colour)
        ]
        label = " · ".join(
            part
            for part in (item.modality, f"series {item.series_number or item.pk}", item.description)
            if part
        )
        stacks.append(
            {
                "id": item.pk,
                "label": label,
                "modality": item.modality,
                "colour": colour,
                "presets": presets,
                "images": images,
            }
        )
    return stacks


def _authorize_upload(request: HttpRequest) -> None:
    department = request.user.department
    enforce_for_request(request, "upload", Resource("study", "new", {"department": department}))


@require_http_methods(["GET", "POST"])
@login_required
# previews are rendered by a worker: 503 page, nothing stored, while it is down (after the access check)
@broker_required_for_post(authorize=_authorize_upload)
def upload(request: HttpRequest) -> HttpResponse:
    user = request.user
    _authorize_upload(request)
    report = None
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        uploads = [(item.name, item.read()) for item in form.cleaned_data["files"]]
        try:
            report = services.upload_ingest(
                actor=user, department=user.department, uploads=uploads, channel=Channel.PORTAL
            )
        except services.UploadRefused as refusal:
            form.add_error("files", str(refusal))
    return render(
        request,
        "medical/upload.html",
        {"form": form, "report": report, "quarantine": selectors.quarantine_for(user)},
    )


@require_POST
@login_required
def study_share(request: HttpRequest, pk: int) -> HttpResponse:
    study = selectors.study_for(request.user, pk, actor=_actor(request))
    form = ShareForm(request.POST)
    if form.is_valid():
        try:
            services.study_share(
                actor=request.user, study=study, colleague_username=form.cleaned_data["username"]
            )
        except services.StudyActionRefused as refusal:
            form.add_error("username", str(refusal))
        else:
            messages.success(request, f"Study shared with {form.cleaned_data['username']}.")
            return redirect("medical:study_detail", pk=study.pk)
    context = _detail_context(request, study, share_form=form)
    return render(request, "medical/study_detail.html", context, status=400)


@require_POST
@login_required
def study_unshare(request: HttpRequest, pk: int) -> HttpResponse:
    study = selectors.study_for(request.user, pk, actor=_actor(request))
    username = request.POST.get("username", "")
    try:
        services.study_unshare(actor=request.user, study=study, colleague_username=username)
    except services.StudyActionRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, f"The study is no longer shared with {username}.")
    return redirect("medical:study_detail", pk=study.pk)


@require_POST
@login_required
def burned_in_review(request: HttpRequest, pk: int) -> HttpResponse:
    study = selectors.study_for(request.user, pk, actor=_actor(request))
    form = BurnedInReviewForm(request.POST)
    if form.is_valid():
        try:
            services.study_burned_in_review(
                actor=request.user, study=study, decision=form.cleaned_data["decision"]
            )
        except services.StudyActionRefused as refusal:
            form.add_error("decision", str(refusal))
        else:
            messages.success(request, "Burned-in annotation review recorded.")
            return redirect("medical:study_detail", pk=study.pk)
    return render(
        request, "medical/study_detail.html", _detail_context(request, study, review_form=form), status=400
    )


@require_POST
@login_required
def break_glass(request: HttpRequest, pk: int) -> HttpResponse:
    """Download an instance's identified original from the study page (a break-glass action).

    Cross-department emergencies go through the API, which takes an instance id.
    """
    study = selectors.study_for(request.user, pk, actor=_actor(request))
    form = BreakGlassForm(request.POST)
    if form.is_valid():
        instance = study_instance(study, form.cleaned_data["instance"])
        try:
            original = services.original_read_break_glass(
                user=request.user,
                instance=instance,
                reason=form.cleaned_data["reason"],
                actor=_actor(request),
            )
        except services.StudyActionRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            return original_response(original, instance_id=instance.pk)
    context = _detail_context(request, study, break_glass_form=form)
    return render(request, "medical/study_detail.html", context, status=400)


def study_instance(study: Study, instance_id: int):
    instance = selectors.instance_for_break_glass(instance_id)
    if instance.series.study_id != study.pk:
        raise Http404(selectors.NOT_FOUND_MESSAGE)
    return instance


@require_GET
@login_required
def instance_preview(request: HttpRequest, pk: int) -> HttpResponse:
    instance = selectors.instance_for(request.user, pk, actor=_actor(request))
    return preview_response(instance)


@require_GET
@login_required
def instance_frame(request: HttpRequest, pk: int, index: int) -> HttpResponse:
    """One frame of the viewer (PNG), at the window in `wc`/`ww`; each request is a trailed read."""
    instance = selectors.instance_for(request.user, pk, actor=_actor(request))
    return frame_response(request, instance, index=index)


def _may_upload(user) -> bool:
    return bool(decide(user, "upload", Resource("study", "new", {"department": user.department})))
