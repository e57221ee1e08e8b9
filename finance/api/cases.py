"""Cases: detail, notes, attachments, disposition and its four-eyes approval."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from finance import selectors, services
from finance.api import REFUSALS, REFUSED, RefusalOutput, created, refused, request_actor
from finance.models import Case
from restapi.fields import UploadField
from restapi.openapi import idempotency_key
from restapi.parsers import LimitedJSONParser


class CaseOutput(serializers.ModelSerializer):
    assignee = serializers.CharField(source="assignee.username", default=None, allow_null=True)
    closing_prepared_by = serializers.CharField(
        source="closing_prepared_by.username", default=None, allow_null=True
    )
    closed_by = serializers.CharField(source="closed_by.username", default=None, allow_null=True)
    alerts = serializers.SerializerMethodField()
    notes = serializers.SerializerMethodField()
    sars = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = [
            "id",
            "team",
            "account",
            "status",
            "assignee",
            "disposition",
            "disposition_reason",
            "closing_prepared_by",
            "closed_by",
            "closed_at",
            "created_at",
            "alerts",
            "notes",
            "sars",
        ]

    def get_alerts(self, case) -> list[int]:
        return list(case.alerts.values_list("pk", flat=True))

    def get_notes(self, case) -> list[dict]:
        return [
            {"id": n.pk, "author": n.author.username if n.author else "", "text": n.text, "at": n.created_at}
            for n in case.notes.select_related("author").order_by("created_at")
        ]

    def get_sars(self, case) -> list[dict]:
        return [{"id": s.pk, "status": s.status} for s in case.sars.order_by("pk")]


class CaseDetailApi(APIView):
    @extend_schema(responses={200: CaseOutput, **REFUSALS}, operation_id="finance_cases_retrieve")
    def get(self, request, pk: int):
        return Response(CaseOutput(selectors.case_for(request.user, pk, actor=request_actor(request))).data)


class NoteInput(serializers.Serializer):
    text = serializers.CharField(max_length=20000)


class CaseNoteApi(APIView):
    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=NoteInput,
        responses={201: CaseOutput, 200: CaseOutput, 422: RefusalOutput, **REFUSALS},
        parameters=[
            idempotency_key("note", "the same text, the note is not added twice: 200", "another text")
        ],
        operation_id="finance_cases_note",
    )
    def post(self, request, pk: int):
        case = selectors.case_for(request.user, pk, actor=request_actor(request))
        data = NoteInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            note = services.note_add(
                actor=request.user,
                case=case,
                text=data.validated_data["text"],
                submission_key=request.headers.get("Idempotency-Key", "").strip(),
            )
        except services.SubmissionKeyReused as error:
            return Response({"detail": str(error)}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        except REFUSED as error:
            return refused(error)
        return created(CaseOutput(case).data, replayed=note.replayed)


class AttachmentInput(serializers.Serializer):
    file = UploadField()


class CaseAttachmentApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": AttachmentInput},
        responses={201: CaseOutput, 200: CaseOutput, **REFUSALS},
        operation_id="finance_cases_attach",
    )
    def post(self, request, pk: int):
        case = selectors.case_for(request.user, pk, actor=request_actor(request))
        data = AttachmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            attachment = services.attachment_add(
                actor=request.user, case=case, filename=upload.name, content=upload.read()
            )
        except REFUSED as error:
            return refused(error)
        return created(CaseOutput(case).data, replayed=attachment.replayed)


class DispositionInput(serializers.Serializer):
    disposition = serializers.ChoiceField(choices=[*Case.Disposition.values, "escalate"])
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class CaseDispositionApi(APIView):
    """Escalate, or prepare a closing (false positive / SAR filed / no SAR) for a second officer."""

    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=DispositionInput,
        responses={200: CaseOutput, **REFUSALS},
        operation_id="finance_cases_disposition",
    )
    def post(self, request, pk: int):
        case = selectors.case_for(request.user, pk, actor=request_actor(request))
        data = DispositionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            if values["disposition"] == "escalate":
                case = services.case_escalate(actor=request.user, case=case, reason=values["reason"])
            else:
                case = services.case_close_prepare(
                    actor=request.user, case=case, disposition=values["disposition"], reason=values["reason"]
                )
        except REFUSED as error:
            return refused(error)
        return Response(CaseOutput(case).data)


class ApprovalInput(serializers.Serializer):
    approve = serializers.BooleanField(default=True)
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class CaseCloseApproveApi(APIView):
    """The second officer approves (or sends back) the prepared closing. The preparer gets 403."""

    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=ApprovalInput,
        responses={200: CaseOutput, **REFUSALS},
        operation_id="finance_cases_close_approve",
    )
    def post(self, request, pk: int):
        case = selectors.case_for(request.user, pk, actor=request_actor(request))
        data = ApprovalInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            if data.validated_data["approve"]:
                case = services.case_close_approve(actor=request.user, case=case)
            else:
                case = services.case_close_reject(
                    actor=request.user, case=case, reason=data.validated_data["reason"]
                )
        except REFUSED as error:
            return refused(error)
        return Response(CaseOutput(case).data)
