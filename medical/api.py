"""REST API of the medical app (mounted at /api/medical/): studies, upload, share, ask, break-glass.

Department isolation: a study the caller may not see answers 404 exactly as a study that does
not exist (see medical.selectors); the denial is trailed. Actions refused by the policy on a study
the caller can see answer 403.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.utils.log import log_response
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from access.drf import PolicyPermission
from access.enforcement import check, trail_denial
from access.errors import PolicyDenied
from access.resources import Resource
from medical import conf, selectors, services
from medical.dicom.frames import FrameError
from medical.models import Channel
from medical.serializers import (
    AnswerOutput,
    AskInput,
    BreakGlassInput,
    BurnedInReviewInput,
    IngestReportOutput,
    ShareInput,
    ShareOutput,
    StudyDetailOutput,
    StudyFilterInput,
    StudyListOutput,
)
from medical.services import frames
from ops.broker import require_broker
from restapi.parsers import LimitedJSONParser as JSONParser  # size and depth limits as 400

logger = logging.getLogger(__name__)


def _actor(request):
    from audit.actors import actor_from_request

    return actor_from_request(request)


def _refused(message: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": message}, status=code)


class StudyListApi(ListAPIView):
    """Studies of the caller's department and those shared with them by name, newest first."""

    permission_classes = [PolicyPermission]
    policy_action = "view"
    policy_resource = "portal:medical"
    serializer_class = StudyListOutput

    @extend_schema(parameters=[StudyFilterInput], operation_id="medical_studies_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = StudyFilterInput(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return selectors.studies_visible_to(self.request.user, filters=query.filters())


class StudyDetailApi(APIView):
    @extend_schema(responses=StudyDetailOutput, operation_id="medical_studies_retrieve")
    def get(self, request, pk: int):
        study = selectors.study_for(request.user, pk, actor=_actor(request))
        return Response(StudyDetailOutput.for_study(study, request=request))


def _may_upload(user) -> None:
    """The check services.upload_ingest makes (PolicyDenied, trailed): `upload` on a new study of
    the caller's department."""
    check(user, "upload", Resource("study", "new", {"department": user.department}))


class StudyUploadApi(APIView):
    """Upload DICOM files and/or ZIP archives of them (multipart field `files`, repeated).

    Each file is stored or refused on its own; the response reports every file. Stored files
    belong to the caller's department.
    """

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}},
                "required": ["files"],
            }
        },
        responses={
            200: IngestReportOutput,
            400: OpenApiResponse(description="No files, or over the limits."),
        },
        operation_id="medical_studies_upload",
    )
    def post(self, request):
        # the files' previews are rendered by a worker: 503 + Retry-After, nothing stored, while it is
        # down; after the service's own access check (a caller who may not upload gets 403, trailed)
        require_broker(authorize=lambda: _may_upload(request.user))
        uploads = [(upload.name, upload.read()) for upload in request.FILES.getlist("files")]
        try:
            report = services.upload_ingest(
                actor=request.user, department=request.user.department, uploads=uploads, channel=Channel.API
            )
        except services.UploadRefused as refusal:
            return _refused(str(refusal))
        return Response(IngestReportOutput.for_report(report))


class StudyShareApi(APIView):
    """Share a study with a named clinician or radiologist (they may then view it and ask about it)."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(request=ShareInput, responses=ShareOutput, operation_id="medical_studies_share")
    def post(self, request, pk: int):
        study = selectors.study_for(request.user, pk, actor=_actor(request))
        data = ShareInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            grants = services.study_share(
                actor=request.user, study=study, colleague_username=data.validated_data["username"]
            )
        except services.StudyActionRefused as refusal:
            return _refused(str(refusal))
        return Response(
            ShareOutput(
                {"study_id": study.pk, "shared_with": data.validated_data["username"], "grants": grants}
            ).data
        )


class StudyUnshareApi(APIView):
    """Stop sharing a study with a colleague: their view and ask grants are revoked (trailed)."""

    @extend_schema(
        request=None,
        responses={204: OpenApiResponse(description="The colleague's grants were revoked.")},
        operation_id="medical_studies_unshare",
    )
    def delete(self, request, pk: int, username: str):
        study = selectors.study_for(request.user, pk, actor=_actor(request))
        try:
            services.study_unshare(actor=request.user, study=study, colleague_username=username)
        except services.StudyActionRefused as refusal:
            return _refused(str(refusal))
        return Response(status=status.HTTP_204_NO_CONTENT)


class StudyAskApi(APIView):
    """Ask a question about a study (or one of its series or instances); the answer is grounded in
    the de-identified header and lists the attributes it used."""

    parser_classes = [JSONParser, FormParser]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "inference"  # each question runs the model

    @extend_schema(request=AskInput, responses=AnswerOutput, operation_id="medical_studies_ask")
    def post(self, request, pk: int):
        actor = _actor(request)
        study = selectors.study_for(request.user, pk, actor=actor)
        data = AskInput(data=request.data)
        data.is_valid(raise_exception=True)
        series = None
        if data.validated_data.get("series_id"):
            series = study.series.filter(pk=data.validated_data["series_id"]).first()
            if series is None:
                return _refused("That series is not part of this study.")
        instance = None
        if data.validated_data.get("instance_id"):
            instance = selectors.instance_for(request.user, data.validated_data["instance_id"], actor=actor)
        try:
            asked = services.study_question_ask(
                user=request.user,
                study=study,
                question=data.validated_data["question"],
                series=series,
                instance=instance,
                actor=actor,
            )
        except services.QuestionRejected as refusal:
            return _refused(str(refusal))
        return Response(AnswerOutput(asked).data)


class StudyQuestionsApi(APIView):
    @extend_schema(responses=AnswerOutput(many=True), operation_id="medical_studies_questions")
    def get(self, request, pk: int):
        study = selectors.study_for(request.user, pk, actor=_actor(request))
        return Response(AnswerOutput(selectors.study_questions(study), many=True).data)


class BurnedInReviewApi(APIView):
    """Record the review of a study flagged for burned-in annotation (radiologists of its department)."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=BurnedInReviewInput,
        responses=StudyDetailOutput,
        operation_id="medical_studies_burned_in_review",
    )
    def post(self, request, pk: int):
        study = selectors.study_for(request.user, pk, actor=_actor(request))
        data = BurnedInReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            services.study_burned_in_review(
                actor=request.user, study=study, decision=data.validated_data["decision"]
            )
        except services.StudyActionRefused as refusal:
            return _refused(str(refusal))
        return Response(StudyDetailOutput.for_study(study, request=request))


class BreakGlassApi(APIView):
    """Emergency read of an instance's identified original, byte for byte as received.

    Needs the policy's `break_glass` and a reason; every use is trailed with the reason. Refusal
    by the policy answers 404, as for an instance that does not exist.
    """

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=BreakGlassInput,
        responses={
            (200, "application/dicom"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="Not found."),
        },
        operation_id="medical_instances_break_glass",
    )
    def post(self, request, pk: int):
        data = BreakGlassInput(data=request.data)
        data.is_valid(raise_exception=True)  # before the lookup, so a probe learns nothing
        instance = selectors.instance_for_break_glass(pk)
        try:
            original = services.original_read_break_glass(
                user=request.user,
                instance=instance,
                reason=data.validated_data["reason"],
                actor=_actor(request),
            )
        except PolicyDenied as denial:
            trail_denial(denial)  # the service's transaction rolled back with it
            return _refused(selectors.NOT_FOUND_MESSAGE, status.HTTP_404_NOT_FOUND)
        except services.StudyActionRefused as refusal:
            return _refused(str(refusal))
        return original_response(original, instance_id=instance.pk)


class InstancePreviewApi(APIView):
    @extend_schema(
        responses={(200, "image/png"): OpenApiTypes.BINARY, 404: OpenApiResponse(description="No preview.")},
        operation_id="medical_instances_preview",
    )
    def get(self, request, pk: int):
        instance = selectors.instance_for(request.user, pk, actor=_actor(request))
        return preview_response(instance)


class InstanceFrameApi(APIView):
    @extend_schema(
        responses={
            (200, "image/png"): OpenApiTypes.BINARY,
            400: OpenApiResponse(description="Malformed window (wc, ww)."),
            404: OpenApiResponse(description="No such frame, or no pixels to show."),
            503: OpenApiResponse(
                description="Not rendered yet: `state` is `queued` (no worker has started it; `stalled` "
                "when that has lasted long enough that the worker is probably not running) or "
                "`rendering`, `seconds` how long; retry after Retry-After seconds."
            ),
        },
        operation_id="medical_instances_frame",
    )
    def get(self, request, pk: int, index: int):
        """Frame `index` (from 0) of an instance as a PNG, at window `wc`/`ww` (default: the image's own).

        Rendered by the worker on first request and cached; X-Window-Center/Width say the window used.
        """
        instance = selectors.instance_for(request.user, pk, actor=_actor(request))
        return frame_response(request, instance, index=index)


def frame_response(request, instance, *, index: int) -> HttpResponse:
    """The PNG of one frame, or a JSON error a person can act on (shared by the portal and the API)."""
    try:
        window = frames.frame_window(request.GET.get("wc"), request.GET.get("ww"))
    except FrameError as refusal:
        return JsonResponse({"detail": str(refusal)}, status=400)
    try:
        frames.frame_check(instance, index)
        frame = frames.frame_wait(instance, index=index, window=window, timeout=conf.frame_wait_seconds())
    except FrameError as refusal:
        return JsonResponse({"detail": str(refusal)}, status=404)
    except Exception:  # the broker is down: say so rather than fail
        logger.exception("could not queue the frames of instance %s", instance.pk)
        busy = JsonResponse({"detail": "The image worker cannot be reached; try again shortly."}, status=503)
        busy["Retry-After"] = "5"
        return busy
    if isinstance(frame, frames.RenderState):
        return _not_ready(request, frame)
    response = HttpResponse(frame.png, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    response["X-Frame-Count"] = str(frames.frame_count(instance))
    if frame.window is not None:
        response["X-Window-Center"] = f"{frame.window.center:g}"
        response["X-Window-Width"] = f"{frame.window.width:g}"
    return response


def _not_ready(request, state: frames.RenderState) -> JsonResponse:
    """503 saying what the frame waits for: a worker to take the render (with how long it has
    waited, and the likely reason), or the render in progress. The viewer shows it and retries.

    An expected answer, not a server error: Django would log each one, at every poll, as an ERROR
    of django.request. It is logged here instead, through Django's own log_response (which marks the
    response logged, so the handler adds nothing): DEBUG while queued or rendering, WARNING when no
    worker has taken it (the worker is probably not running: what an operator should see)."""
    waited = round(state.seconds)
    if state.stalled:
        detail = (
            f"Queued for the image worker {waited} s ago; no worker has started it. The worker that "
            "renders images is not running or is busy: the frame appears once it runs "
            "(administrators: `make run` starts it, or `python manage.py run_worker`)."
        )
        retry_after = "5"
    elif state.state == "queued":
        detail = "Queued for the image worker; it has not started yet."
        retry_after = "1"
    else:
        detail = "The image worker is rendering this frame; try again."
        retry_after = "1"
    busy = JsonResponse(
        {"detail": detail, "state": state.state, "seconds": waited, "stalled": state.stalled}, status=503
    )
    busy["Retry-After"] = retry_after
    log_response(
        "Frame not ready (%s%s): %s",
        state.state,
        ", stalled" if state.stalled else "",
        request.path,
        response=busy,
        request=request,
        level="warning" if state.stalled else "debug",
    )
    return busy


def original_response(original: bytes, *, instance_id: int) -> HttpResponse:
    response = HttpResponse(original, content_type="application/dicom")
    response["Content-Disposition"] = f'attachment; filename="original-{instance_id}.dcm"'
    response["Cache-Control"] = "no-store"
    return response


def preview_response(instance) -> HttpResponse:
    from django.http import Http404

    from medical import storage

    if instance.preview_status != instance.PreviewStatus.READY or not instance.preview_file:
        raise Http404("No preview yet.")
    response = HttpResponse(storage.read_media(instance.preview_file), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response
