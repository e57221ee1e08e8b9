"""REST API of the manufacturing app, mounted at /api/manufacturing/ (namespace "manufacturing_api")."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import actor_from_request
from manufacturing import selectors, services
from manufacturing.models import FailureSuggestion, WorkOrder
from ops.broker import require_broker
from portal.submissions import REPLAYED_HEADER
from restapi.fields import UploadField
from restapi.parsers import LimitedJSONParser as JSONParser  # size and depth limits as 400


def _actor(request):

    return actor_from_request(request)


def _refused(message: str, code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": message}, status=code)


class MaintenanceRefusal(serializers.Serializer):
    detail = serializers.CharField()


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
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description=(
                    "Your key for this submission (1-64 letters, digits, '-' or '_', e.g. a UUID). "
                    "Sent again with the same body, it returns the work order already filed "
                    "(header Idempotent-Replayed: true) and files nothing; with another body, 422."
                ),
            )
        ],
        operation_id="manufacturing_work_orders_file",
    )
    def post(self, request):
        data = WorkOrderFileInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        machine = selectors.machine_for(request.user, values["machine"], actor=_actor(request))
        alert = None
        if values["alert"] is not None:
            alert = selectors.alert_for(request.user, values["alert"], actor=_actor(request))
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
                submission_key=request.headers.get("Idempotency-Key", "").strip(),
            )
        except services.SubmissionKeyReused as refusal:
            return _refused(str(refusal), status.HTTP_422_UNPROCESSABLE_ENTITY)
        except services.WorkOrderRefused as refusal:
            return _refused(str(refusal))
        response = Response(WorkOrderOutput(work_order).data, status=status.HTTP_201_CREATED)
        if work_order.replayed:
            response[REPLAYED_HEADER] = "true"
        return response


class WorkOrderDetailApi(APIView):
    @extend_schema(responses=WorkOrderOutput, operation_id="manufacturing_work_orders_retrieve")
    def get(self, request, pk: int):
        return Response(
            WorkOrderOutput(selectors.work_order_for(request.user, pk, actor=_actor(request))).data
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
        work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
        data = WorkOrderTransitionInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        try:
            work_order = services.work_order_transition(
                actor=request.user, work_order=work_order, to_status=values.pop("status"), **values
            )
        except services.WorkOrderRefused as refusal:
            return _refused(str(refusal))
        response = Response(WorkOrderOutput(work_order).data)
        if work_order.replayed:  # the same move sent again: already made, nothing changed
            response[REPLAYED_HEADER] = "true"
        return response


class RecordingUploadInput(serializers.Serializer):
    machine = serializers.IntegerField()
    file = UploadField()
    sample_rate = serializers.FloatField(
        required=False,
        default=0,
        help_text="Samples per second; may be left out when a CSV has a time column.",
    )
    rpm = serializers.FloatField(
        required=False,
        default=0,
        help_text="Shaft speed; may be left out when a .mat file has an RPM variable.",
    )
    units = serializers.CharField(default="g", max_length=8)
    channel = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=64,
        help_text="The column (CSV name or number, .npy number) or .mat variable (or DE, FE, BA) of a file "
        "with several channels.",
    )


class RecordingUploadOutput(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField(help_text="pending, done or failed")
    samples = serializers.IntegerField()


class RecordingUploadApi(APIView):
    """Upload a vibration recording (.csv, .npy or MATLAB .mat); the analysis runs on the worker."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        request={"multipart/form-data": RecordingUploadInput},
        responses={
            200: RecordingUploadOutput,
            201: RecordingUploadOutput,
            400: MaintenanceRefusal,
            404: MaintenanceRefusal,
        },
        operation_id="manufacturing_recordings_upload",
    )
    def post(self, request):
        data = RecordingUploadInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, data.validated_data["machine"], actor=_actor(request))
        upload = data.validated_data["file"]
        # the analysis runs on a worker: 503 + Retry-After, nothing stored, while it is down; the
        # service's access check ("view" on the machine, 404 trailed) was machine_for's, above
        require_broker(authorize=lambda: None)
        try:
            recording = services.recording_upload(
                actor=request.user,
                machine=machine,
                name=upload.name,
                data=upload.read(),
                sample_rate=data.validated_data["sample_rate"],
                rpm=data.validated_data["rpm"],
                units=data.validated_data["units"],
                channel=data.validated_data["channel"],
            )
        except services.RecordingRefused as refusal:
            return _refused(str(refusal))
        response = Response(
            {"id": recording.pk, "status": recording.status, "samples": recording.sample_count},
            status=status.HTTP_200_OK if recording.replayed else status.HTTP_201_CREATED,
        )
        if recording.replayed:  # the same file and settings were already uploaded: nothing new stored
            response[REPLAYED_HEADER] = "true"
        return response


class ConditionAppendInput(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text="Readings in cycle order: objects {unit, cycle, settings: [3 numbers], sensors: [21 numbers]} "
        "or lists of the 26 numbers of a C-MAPSS row. At most 10,000 per request.",
    )


class ConditionRowError(serializers.Serializer):
    row = serializers.IntegerField(help_text="1-based position in `rows`")
    error = serializers.CharField()


class ConditionRefusal(serializers.Serializer):
    detail = serializers.CharField()
    rows = ConditionRowError(many=True, required=False)


class ConditionAppendOutput(serializers.Serializer):
    rows = serializers.IntegerField()
    units = serializers.DictField(child=serializers.IntegerField(), help_text="each unit's last cycle now")
    prediction = serializers.CharField(help_text="'queued' when the asset's family has a RUL model")


class ConditionAppendApi(APIView):
    """Append new condition readings (C-MAPSS-style cycles) to an asset, all or nothing with a per-row
    report; once stored, the asset's remaining-life prediction is renewed on the worker (alerts follow)."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=ConditionAppendInput,
        responses={
            200: ConditionAppendOutput,
            201: ConditionAppendOutput,
            400: ConditionRefusal,
            404: MaintenanceRefusal,
        },
        operation_id="manufacturing_condition_append",
    )
    def post(self, request, pk):
        data = ConditionAppendInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, pk, actor=_actor(request))
        if services.rul_model_exists(machine):
            # the renewal runs on a worker: 503 + Retry-After, nothing stored, while it is down
            require_broker(authorize=lambda: None)
        try:
            result = services.condition_append(
                actor=request.user, machine=machine, rows=data.validated_data["rows"]
            )
        except services.ConditionRefused as refusal:
            return Response(
                {"detail": str(refusal), "rows": refusal.rows}, status=status.HTTP_400_BAD_REQUEST
            )
        if result.pop("replayed", False):  # the same batch again: already stored, nothing new
            response = Response(result, status=status.HTTP_200_OK)
            response[REPLAYED_HEADER] = "true"
            return response
        return Response(result, status=status.HTTP_201_CREATED)


class MaintenancePlanInput(serializers.Serializer):
    title = serializers.CharField(max_length=255)
    every_days = serializers.IntegerField(required=False, allow_null=True, default=None)
    every_hours = serializers.FloatField(required=False, allow_null=True, default=None)
    instructions = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.ChoiceField(choices=WorkOrder.Priority.choices, default=WorkOrder.Priority.MEDIUM)
    team = serializers.CharField(required=False, allow_blank=True, default="", max_length=64)


class MaintenancePlanOutput(serializers.Serializer):
    id = serializers.IntegerField(source="plan.pk")
    title = serializers.CharField(source="plan.title")
    every_days = serializers.IntegerField(source="plan.every_days", allow_null=True)
    every_hours = serializers.FloatField(source="plan.every_hours", allow_null=True)
    due_date = serializers.DateTimeField(source="due.date", allow_null=True)
    due_hours = serializers.FloatField(source="due.hours", allow_null=True)
    due_now = serializers.CharField(help_text="Why it is due now; empty when it is not.")
    open_work_order = serializers.IntegerField(source="open.pk", allow_null=True, default=None)
    owner = serializers.CharField(source="plan.owner.username", allow_null=True, default=None)
    owner_may_file = serializers.BooleanField(
        help_text="False when the owner may no longer file work orders on the site: the plan files nothing "
        "until someone of the site takes it over (PUT plans/<id>/)."
    )
    instructions = serializers.CharField(source="plan.instructions")
    priority = serializers.IntegerField(source="plan.priority")


class MaintenancePlanApi(APIView):
    """An asset's preventive maintenance plans: list them (with when each falls due) or add one."""

    parser_classes = [JSONParser]

    @extend_schema(responses=MaintenancePlanOutput(many=True), operation_id="manufacturing_plans_list")
    def get(self, request, pk):
        machine = selectors.machine_for(request.user, pk, actor=_actor(request))
        return Response(MaintenancePlanOutput(selectors.maintenance_plans_of(machine), many=True).data)

    @extend_schema(
        request=MaintenancePlanInput,
        responses={201: MaintenancePlanOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_plans_create",
    )
    def post(self, request, pk):
        from manufacturing.services.maintenance_plans import PlanRefused, plan_create

        data = MaintenancePlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, pk, actor=_actor(request))
        try:
            plan = plan_create(actor=request.user, machine=machine, **data.validated_data)
        except PlanRefused as refusal:
            return _refused(str(refusal))
        row = next(row for row in selectors.maintenance_plans_of(machine) if row["plan"].pk == plan.pk)
        return Response(MaintenancePlanOutput(row).data, status=status.HTTP_201_CREATED)


class MaintenancePlanDetailApi(APIView):
    """Change a plan (every field, as when it was added) and take it over: its work orders are filed on
    the caller's authority from now on."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=MaintenancePlanInput,
        responses={200: MaintenancePlanOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_plans_update",
    )
    def put(self, request, pk):
        from manufacturing.services.maintenance_plans import PlanRefused, plan_update

        data = MaintenancePlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        plan = selectors.maintenance_plan_for(request.user, pk, actor=_actor(request))
        try:
            plan = plan_update(actor=request.user, plan=plan, **data.validated_data)
        except PlanRefused as refusal:
            return _refused(str(refusal))
        row = next(row for row in selectors.maintenance_plans_of(plan.machine) if row["plan"].pk == plan.pk)
        return Response(MaintenancePlanOutput(row).data)


class MeterReadingInput(serializers.Serializer):
    hours = serializers.FloatField(help_text="Running hours on the meter now.")


class MeterReadingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    hours = serializers.FloatField()
    read_at = serializers.DateTimeField()


class MeterReadingApi(APIView):
    """Record an asset's running hours; a plan the reading makes due files its work order at once."""

    parser_classes = [JSONParser]

    @extend_schema(
        request=MeterReadingInput,
        responses={201: MeterReadingOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_meter_record",
    )
    def post(self, request, pk):
        from manufacturing.services.maintenance_plans import PlanRefused, meter_record

        data = MeterReadingInput(data=request.data)
        data.is_valid(raise_exception=True)
        machine = selectors.machine_for(request.user, pk, actor=_actor(request))
        try:
            reading = meter_record(actor=request.user, machine=machine, hours=data.validated_data["hours"])
        except PlanRefused as refusal:
            return _refused(str(refusal))
        return Response(MeterReadingOutput(reading).data, status=status.HTTP_201_CREATED)


class FailureSuggestInput(serializers.Serializer):
    problem = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


class FailureSuggestionOutput(serializers.ModelSerializer):
    class Meta:
        model = FailureSuggestion
        fields = [
            "id",
            "work_order",
            "problem",
            "suggested_code",
            "diagnosis",
            "evidence",
            "model_name",
            "verdict",
            "final_code",
            "created_at",
            "reviewed_at",
        ]


class FailureSuggestionReviewInput(serializers.Serializer):
    code = serializers.CharField(
        max_length=32, help_text="The failure mode: the suggested code accepts, another corrects."
    )


class WorkOrderSuggestApi(APIView):
    """Ask the assistant: similar past work orders, the asset's condition and the local LLM's draft."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=FailureSuggestInput,
        responses={201: FailureSuggestionOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_work_orders_suggest",
    )
    def post(self, request, pk: int):
        from manufacturing.services.assistant import SuggestionRefused, assistant_suggest

        work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
        data = FailureSuggestInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            suggestion = assistant_suggest(
                actor=request.user, work_order=work_order, problem=data.validated_data["problem"]
            )
        except SuggestionRefused as refusal:
            return _refused(str(refusal))
        return Response(FailureSuggestionOutput(suggestion).data, status=status.HTTP_201_CREATED)


class SuggestionReviewApi(APIView):
    """Accept or correct a suggestion; the verdict is trailed and feeds the next suggestion."""

    parser_classes = [JSONParser, FormParser]

    @extend_schema(
        request=FailureSuggestionReviewInput,
        responses={200: FailureSuggestionOutput, 400: MaintenanceRefusal, 404: MaintenanceRefusal},
        operation_id="manufacturing_suggestions_review",
    )
    def post(self, request, pk: int):
        from manufacturing.services.assistant import SuggestionRefused, suggestion_review

        suggestion = selectors.suggestion_for(request.user, pk, actor=_actor(request))
        data = FailureSuggestionReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            suggestion = suggestion_review(
                actor=request.user, suggestion=suggestion, code=data.validated_data["code"]
            )
        except SuggestionRefused as refusal:
            return _refused(str(refusal))
        return Response(FailureSuggestionOutput(suggestion).data)


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
        from manufacturing.services.work_orders import work_order_update

        work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
        data = WorkOrderPlanInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            work_order = work_order_update(actor=request.user, work_order=work_order, **data.validated_data)
        except services.WorkOrderRefused as refusal:
            return _refused(str(refusal))
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
        from manufacturing.services.work_orders import work_order_attach

        work_order = selectors.work_order_for(request.user, pk, actor=_actor(request))
        data = WorkOrderAttachmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            attachment = work_order_attach(
                actor=request.user, work_order=work_order, name=upload.name, data=upload.read()
            )
        except services.WorkOrderRefused as refusal:
            return _refused(str(refusal))
        response = Response(
            {"id": attachment.pk, "content_type": attachment.content_type, "name": attachment.original_name},
            status=status.HTTP_200_OK if attachment.replayed else status.HTTP_201_CREATED,
        )
        if attachment.replayed:  # the same bytes were already attached: nothing new stored
            response[REPLAYED_HEADER] = "true"
        return response
