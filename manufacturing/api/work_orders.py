"""Work orders: filed, listed, moved through their states, planned, with attachments."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from manufacturing import selectors, services
from manufacturing.api import MaintenanceRefusal, refused, request_actor
from manufacturing.models import WorkOrder
from manufacturing.services.work_orders import work_order_attach, work_order_update
from portal.submissions import REPLAYED_HEADER
from restapi.fields import UploadField
from restapi.openapi import idempotency_key
from restapi.parsers import LimitedJSONParser as JSONParser  # size and depth limits as 400


class WorkOrderOutput(serializers.ModelSerializer):
    machine_tag = serializers.CharField(source="machine.tag", default="")

    class Meta:
        model = WorkOrder
        fields = [
            "id",
            "site",
            "machine",
            "machine_tag",
            "alert",
            "scan",
            "preventive",
            "plan",
            "external_id",
            "title",
            "description",
            "status",
            "priority",
            "due",
            "team",
            "labour_hours",
            "downtime_hours",
            "failure_mode",
            "failure_cause",
            "action_code",
            "created_at",
            "completed_at",
        ]


class WorkOrderFileInput(serializers.Serializer):
    machine = serializers.IntegerField()
    title = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, default=WorkOrder.Priority.MEDIUM)
    due = serializers.DateField(required=False, allow_null=True, default=None)
    team = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)
    alert = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="The alert this work order answers."
    )
    scan = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The registered 3-D scan of this asset whose wear it is filed for (its component too).",
    )


class WorkOrderTransitionInput(serializers.Serializer):
    status = serializers.CharField(max_length=16)
    note = serializers.CharField(required=False, allow_blank=True, default="")
    failure_mode = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    failure_cause = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    action_code = serializers.CharField(required=False, allow_blank=True, default="", max_length=32)
    labour_hours = serializers.FloatField(required=False, allow_null=True, default=None)
    downtime_hours = serializers.FloatField(required=False, allow_null=True, default=None)


class WorkOrderListApi(APIView):
    """Work orders the caller may see (their site's, and those assigned to them), newest first; POST files one."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(responses=WorkOrderOutput(many=True), operation_id="manufacturing_work_orders_list")
    def get(self, request):
        queryset = selectors.work_orders_visible_to(
            request.user, status=request.query_params.get("status", "")
        )
        return Response(WorkOrderOutput(queryset[:200], many=True).data)

    @extend_schema(
        request=WorkOrderFileInput,
        responses={201: WorkOrderOutput, 400: MaintenanceRefusal, 422: MaintenanceRefusal},
        parameters=[
            idempotency_key(
                "submission",
                "the same body, it returns the work order already filed and files nothing",
                "another body",
            )
        ],
        operation_id="manufacturing_work_orders_file",
    )
    def post(self, request):
        data = WorkOrderFileInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        machine = selectors.machine_for(request.user, values["machine"], actor=request_actor(request))
        alert = None
        if values["alert"] is not None:
            alert = selectors.alert_for(request.user, values["alert"], actor=request_actor(request))
        scan = None
        if values["scan"] is not None:
            scan = selectors.scan_for(request.user, values["scan"], actor=request_actor(request))
        try:
            work_order = services.work_order_file(
                actor=request.user,
                machine=machine,
                title=values["title"],
                description=values["description"],
                priority=values["priority"],
                due=values["due"],
                team=values["team"],
                alert=alert,
                scan=scan,
                submission_key=request.headers.get("Idempotency-Key", "").strip(),
            )
        except services.SubmissionKeyReused as refusal:
            return refused(str(refusal), status.HTTP_422_UNPROCESSABLE_ENTITY)
        except services.WorkOrderRefused as refusal:
            return refused(str(refusal))
        response = Response(WorkOrderOutput(work_order).data, status=status.HTTP_201_CREATED)
        if work_order.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


class WorkOrderDetailApi(APIView):
    @extend_schema(responses=WorkOrderOutput, operation_id="manufacturing_work_orders_retrieve")
    def get(self, request, pk: int):
        return Response(
            WorkOrderOutput(selectors.work_order_for(request.user, pk, actor=request_actor(request))).data
        )


class WorkOrderTransitionApi(APIView):
    """Move a work order along OPEN -> IN_PROGRESS <-> ON_HOLD -> COMPLETE (codes required), or CANCELLED."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=WorkOrderTransitionInput,
        responses=WorkOrderOutput,
        operation_id="manufacturing_work_orders_transition",
    )
    def post(self, request, pk: int):
        work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
        data = WorkOrderTransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        try:
            work_order = services.work_order_transition(
                actor=request.user, work_order=work_order, to_status=values.pop("status"), **values
            )
        except services.WorkOrderRefused as refusal:
            return refused(str(refusal))
        response = Response(WorkOrderOutput(work_order).data)
        if work_order.replayed:  # the same move sent again: already made, nothing changed
            response[REPLAYED_HEADER] = "true"
        return response


class WorkOrderPlanInput(serializers.Serializer):
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, required=False)
    due = serializers.DateField(required=False, allow_null=True)
    team = serializers.CharField(required=False, allow_blank=True, max_length=64)
    assignee = serializers.CharField(required=False, allow_blank=True, help_text="user name; empty unassigns")
    labour_hours = serializers.FloatField(required=False, min_value=0)
    downtime_hours = serializers.FloatField(required=False, min_value=0)


class WorkOrderPlanApi(APIView):
    """Change priority, due date, team, assignee (another site's engineer gets a grant) and hours."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=WorkOrderPlanInput,
        responses={200: WorkOrderOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_work_orders_plan",
    )
    def post(self, request, pk: int):
        work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
        data = WorkOrderPlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            work_order = work_order_update(actor=request.user, work_order=work_order, **data.validated_data)
        except services.WorkOrderRefused as refusal:
            return refused(str(refusal))
        return Response(WorkOrderOutput(work_order).data)


class WorkOrderAttachmentInput(serializers.Serializer):
    file = UploadField(help_text="a JPEG, PNG or WebP photo, or a PDF (15 MiB at most)")


class WorkOrderAttachmentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    content_type = serializers.CharField()
    name = serializers.CharField()


class WorkOrderAttachmentApi(APIView):
    """Attach a photo or a PDF to a work order (the type is read from the content)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": WorkOrderAttachmentInput},
        responses={
            200: WorkOrderAttachmentOutput,
            201: WorkOrderAttachmentOutput,
            400: MaintenanceRefusal,
            404: MaintenanceRefusal,
        },
        operation_id="manufacturing_work_orders_attach",
    )
    def post(self, request, pk: int):
        work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
        data = WorkOrderAttachmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            attachment = work_order_attach(
                actor=request.user, work_order=work_order, name=upload.name, data=upload.read()
            )
        except services.WorkOrderRefused as refusal:
            return refused(str(refusal))
        response = Response(
            {"id": attachment.pk, "content_type": attachment.content_type, "name": attachment.original_name},
            status=status.HTTP_200_OK if attachment.replayed else status.HTTP_201_CREATED,
        )
        if attachment.replayed:  # the same bytes were already attached: nothing new stored
            response[REPLAYED_HEADER] = "true"
        return response
