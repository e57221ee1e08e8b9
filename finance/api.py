"""REST API of the finance app, mounted at /api/finance/ (namespace "finance_api"). Thin: parse,
authorize through the selectors/services, call one service, answer."""

from __future__ import annotations

import datetime as dt

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from access.errors import PolicyDenied
from accounts.models import User
from audit.actors import actor_from_request
from finance import selectors, services
from finance.models import SAR, Alert, Case, ScenarioVersion
from finance.services import sanctions as sanctions_services
from finance.services import sar as sar_services
from portal.submissions import REPLAYED_HEADER
from restapi.fields import UploadField
from restapi.parsers import LimitedJSONParser


def _actor(request):

    return actor_from_request(request)


class RefusalOutput(serializers.Serializer):
    detail = serializers.CharField()


class BatchRefusalOutput(serializers.Serializer):
    detail = serializers.CharField()
    errors = serializers.ListField(child=serializers.DictField())


REFUSALS = {
    400: RefusalOutput,
    401: RefusalOutput,
    403: RefusalOutput,
    404: RefusalOutput,
}


def _refused(error: Exception) -> Response:
    if isinstance(error, services.BatchRejected):
        return Response({"detail": str(error), "errors": error.errors}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(error, PolicyDenied | services.FourEyesViolation):
        return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
    return Response({"detail": str(error)}, status=status.HTTP_400_BAD_REQUEST)


REFUSED = (services.FinanceRefused, PolicyDenied)


def _created(data, *, replayed: bool) -> Response:
    """201, or 200 with `Idempotent-Replayed: true` when the same submission was already taken."""
    if not replayed:
        return Response(data, status=status.HTTP_201_CREATED)
    response = Response(data, status=status.HTTP_200_OK)
    response[REPLAYED_HEADER] = "true"
    return response


# --- transactions ------------------------------------------------------------------------------
class BatchInput(serializers.Serializer):
    team = serializers.SlugField(required=False, allow_blank=True, default="", max_length=64)
    transactions = serializers.ListField(child=serializers.JSONField(), allow_empty=False)


class BatchOutput(serializers.Serializer):
    batch = serializers.CharField()
    transactions = serializers.IntegerField()
    alerts = serializers.IntegerField()
    holds = serializers.IntegerField()
    cases = serializers.IntegerField()
    decisions = serializers.ListField(child=serializers.DictField())


def _team(request, given: str) -> str:
    return given or getattr(request.user, "department", "") or ""


class TransactionBatchApi(APIView):
    """Import and screen a batch of transactions, all or nothing (per-row error report on 400)."""

    parser_classes = [LimitedJSONParser]

    @extend_schema(
        request=BatchInput,
        responses={201: BatchOutput, 400: BatchRefusalOutput, 401: RefusalOutput, 403: RefusalOutput},
        operation_id="finance_transactions_batch",
    )
    def post(self, request):
        data = BatchInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rows = data.validated_data["transactions"]
            table = services.rows_validate(rows)
            result = services.transactions_ingest(
                actor=request.user,
                table=table,
                team=_team(request, data.validated_data["team"]),
                source="api.batch",
                parties=services.rows_parties(rows),
            )
        except REFUSED as error:
            return _refused(error)
        return Response(
            {
                "batch": result.batch,
                "transactions": result.transactions,
                "alerts": result.alerts,
                "holds": result.holds,
                "cases": result.cases,
                "decisions": result.decisions,
            },
            status=status.HTTP_201_CREATED,
        )


class ScreenInput(serializers.Serializer):
    team = serializers.SlugField(required=False, allow_blank=True, default="", max_length=64)
    transaction = serializers.DictField()


class ScreenOutput(serializers.Serializer):
    id = serializers.IntegerField()
    tx_ref = serializers.CharField()
    decision = serializers.ChoiceField(choices=["approve", "review", "hold"])
    risk = serializers.FloatField()
    alert = serializers.IntegerField(allow_null=True)
    hits = serializers.ListField(child=serializers.CharField())
    name_matches = serializers.ListField(child=serializers.CharField())


class TransactionScreenApi(APIView):
    """Screen one transaction in real time: approve, review (alert) or hold, answered synchronously."""

    parser_classes = [LimitedJSONParser]

    @extend_schema(
        request=ScreenInput,
        responses={200: ScreenOutput, 400: BatchRefusalOutput, 401: RefusalOutput, 403: RefusalOutput},
        operation_id="finance_transactions_screen",
    )
    def post(self, request):
        data = ScreenInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rows = [data.validated_data["transaction"]]
            table = services.rows_validate(rows)
            result = services.transactions_ingest(
                actor=request.user,
                table=table,
                team=_team(request, data.validated_data["team"]),
                source="api.realtime",
                realtime=True,
                parties=services.rows_parties(rows),
            )
        except REFUSED as error:
            return _refused(error)
        return Response(result.decisions[0])


# --- alerts --------------------------------------------------------------------------------------
class AlertOutput(serializers.ModelSerializer):
    tx_ref = serializers.CharField(source="transaction.tx_ref")
    src_account = serializers.CharField(source="transaction.src_account")
    dst_account = serializers.CharField(source="transaction.dst_account")
    amount = serializers.FloatField(source="transaction.amount_paid")
    currency = serializers.CharField(source="transaction.currency_paid")
    assignee = serializers.CharField(source="assignee.username", default=None, allow_null=True)
    scenarios = serializers.SerializerMethodField()
    sla = serializers.SerializerMethodField()
    status = serializers.CharField(help_text="new, assigned or closed")

    class Meta:
        model = Alert
        fields = [
            "id",
            "team",
            "risk",
            "decision",
            "status",
            "case",
            "transaction",
            "tx_ref",
            "src_account",
            "dst_account",
            "amount",
            "currency",
            "assignee",
            "scenarios",
            "sla",
            "created_at",
        ]

    def get_scenarios(self, alert) -> list[str]:
        return [f"{h['code']} v{h['version']}" for h in alert.evidence.get("rules", [])]

    def get_sla(self, alert) -> dict:
        return selectors.alert_sla(alert)


class AlertDetailOutput(AlertOutput):
    evidence = serializers.JSONField()
    trail = serializers.SerializerMethodField()

    class Meta(AlertOutput.Meta):
        fields = [*AlertOutput.Meta.fields, "evidence", "trail"]

    def get_trail(self, alert) -> list[dict]:
        return selectors.trail_for(("alert", alert.pk), ("transaction", alert.transaction_id))


class AlertListApi(APIView):
    """Alerts the caller may see; filter by status, decision, scenario, team; sort by risk (default), age."""

    @extend_schema(
        responses={200: AlertOutput(many=True), 401: RefusalOutput}, operation_id="finance_alerts_list"
    )
    def get(self, request):
        params = request.query_params
        queryset = selectors.alerts_visible_to(
            request.user,
            status=params.get("status", ""),
            decision=params.get("decision", ""),
            scenario=params.get("scenario", ""),
            team=params.get("team", ""),
            sort=params.get("sort", "risk"),
        )
        return Response(AlertOutput(queryset[:200], many=True).data)


class AlertDetailApi(APIView):
    @extend_schema(responses={200: AlertDetailOutput, **REFUSALS}, operation_id="finance_alerts_retrieve")
    def get(self, request, pk: int):
        return Response(AlertDetailOutput(selectors.alert_for(request.user, pk, actor=_actor(request))).data)


class ReplayOutput(serializers.Serializer):
    alert_id = serializers.IntegerField()
    identical = serializers.BooleanField()
    event_sequence = serializers.IntegerField()
    event_hash_ok = serializers.BooleanField()
    differences = serializers.ListField(child=serializers.CharField())


class AlertReplayApi(APIView):
    """Recompute the alert from its trail event alone and say whether it is identical."""

    @extend_schema(responses={200: ReplayOutput, **REFUSALS}, operation_id="finance_alerts_replay")
    def get(self, request, pk: int):
        alert = selectors.alert_for(request.user, pk, actor=_actor(request))
        try:
            result = services.alert_replay(alert_id=alert.pk)
        except services.FinanceRefused as error:
            return _refused(error)
        return Response(ReplayOutput(result).data)


class WhitelistInput(serializers.Serializer):
    entry_id = serializers.CharField(max_length=160)
    party = serializers.ChoiceField(choices=["src", "dst"])
    reason = serializers.CharField(max_length=2000)
    days = serializers.IntegerField(min_value=1, max_value=366, default=90)


class WhitelistOutput(serializers.Serializer):
    id = serializers.IntegerField()
    entry_id = serializers.CharField()
    expires_at = serializers.DateTimeField()
    trail_event = serializers.IntegerField()


class AlertWhitelistApi(APIView):
    """Judge a name match on the alert false: that party no longer matches that entry until expiry."""

    @extend_schema(
        request=WhitelistInput,
        responses={201: WhitelistOutput, **REFUSALS},
        operation_id="finance_alerts_whitelist",
    )
    def post(self, request, pk: int):
        data = WhitelistInput(data=request.data)
        data.is_valid(raise_exception=True)
        alert = selectors.alert_for(request.user, pk, actor=_actor(request))
        try:
            row = sanctions_services.match_whitelist(actor=request.user, alert=alert, **data.validated_data)
        except REFUSED as error:
            return _refused(error)
        return Response(WhitelistOutput(row).data, status=status.HTTP_201_CREATED)


class AssignInput(serializers.Serializer):
    # ids within a database integer (a larger one overflowed the pk__in lookup: a 500)
    alerts = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), allow_empty=False, max_length=500
    )
    assignee = serializers.CharField(max_length=150)


class AlertAssignApi(APIView):
    """Bulk-assign alerts to an officer of their team (all or nothing)."""

    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=AssignInput,
        responses={200: OpenApiTypes.OBJECT, **REFUSALS},
        operation_id="finance_alerts_assign",
    )
    def post(self, request):

        data = AssignInput(data=request.data)
        data.is_valid(raise_exception=True)
        alerts = selectors.alerts_for(
            request.user, data.validated_data["alerts"], action="view", actor=_actor(request)
        )
        assignee = User.objects.filter(username=data.validated_data["assignee"], is_active=True).first()
        if assignee is None:
            return Response({"detail": "No such active user."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            count = services.alerts_assign(actor=request.user, alerts=alerts, assignee=assignee)
        except REFUSED as error:
            return _refused(error)
        return Response({"assigned": count, "assignee": assignee.username})


# --- cases ---------------------------------------------------------------------------------------
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
        return Response(CaseOutput(selectors.case_for(request.user, pk, actor=_actor(request))).data)


class NoteInput(serializers.Serializer):
    text = serializers.CharField(max_length=20000)


class CaseNoteApi(APIView):
    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=NoteInput,
        responses={201: CaseOutput, 200: CaseOutput, 422: RefusalOutput, **REFUSALS},
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description=(
                    "Your key for this note (1-64 letters, digits, '-' or '_', e.g. a UUID). Sent again "
                    "with the same text, the note is not added twice: 200 with header "
                    "Idempotent-Replayed: true; with another text, 422."
                ),
            )
        ],
        operation_id="finance_cases_note",
    )
    def post(self, request, pk: int):
        case = selectors.case_for(request.user, pk, actor=_actor(request))
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
            return _refused(error)
        return _created(CaseOutput(case).data, replayed=note.replayed)


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
        case = selectors.case_for(request.user, pk, actor=_actor(request))
        data = AttachmentInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            attachment = services.attachment_add(
                actor=request.user, case=case, filename=upload.name, content=upload.read()
            )
        except REFUSED as error:
            return _refused(error)
        return _created(CaseOutput(case).data, replayed=attachment.replayed)


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
        case = selectors.case_for(request.user, pk, actor=_actor(request))
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
            return _refused(error)
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
        case = selectors.case_for(request.user, pk, actor=_actor(request))
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
            return _refused(error)
        return Response(CaseOutput(case).data)


# --- SARs ------------------------------------------------------------------------------------------
class SarOutput(serializers.ModelSerializer):
    prepared_by = serializers.CharField(source="prepared_by.username", default=None, allow_null=True)
    approved_by = serializers.CharField(source="approved_by.username", default=None, allow_null=True)

    class Meta:
        model = SAR
        fields = [
            "id",
            "case",
            "status",
            "text",
            "facts",
            "verification",
            "editors",
            "model_name",
            "prepared_by",
            "approved_by",
            "approved_at",
            "created_at",
        ]


class SarDraftInput(serializers.Serializer):
    use_model = serializers.BooleanField(default=True)


class CaseSarDraftApi(APIView):
    """Draft a SAR for the case from its facts (the local LLM phrases; numbers and citations verified)."""

    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=SarDraftInput, responses={201: SarOutput, **REFUSALS}, operation_id="finance_sars_draft"
    )
    def post(self, request, pk: int):
        case = selectors.case_for(request.user, pk, actor=_actor(request))
        data = SarDraftInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            sar = sar_services.sar_draft(
                actor=request.user, case=case, use_model=data.validated_data["use_model"]
            )
        except REFUSED as error:
            return _refused(error)
        return Response(SarOutput(sar).data, status=status.HTTP_201_CREATED)


class SarEditInput(serializers.Serializer):
    text = serializers.CharField(max_length=50000)


class SarDetailApi(APIView):
    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(responses={200: SarOutput, **REFUSALS}, operation_id="finance_sars_retrieve")
    def get(self, request, pk: int):
        return Response(SarOutput(selectors.sar_for(request.user, pk, actor=_actor(request))).data)

    @extend_schema(
        request=SarEditInput, responses={200: SarOutput, **REFUSALS}, operation_id="finance_sars_edit"
    )
    def post(self, request, pk: int):
        sar = selectors.sar_for(request.user, pk, actor=_actor(request))
        data = SarEditInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            sar = sar_services.sar_edit(actor=request.user, sar=sar, text=data.validated_data["text"])
        except REFUSED as error:
            return _refused(error)
        return Response(SarOutput(sar).data)


class SarApproveApi(APIView):
    """A second officer approves the SAR; whoever drafted or edited it gets 403 (four eyes)."""

    @extend_schema(request=None, responses={200: SarOutput, **REFUSALS}, operation_id="finance_sars_approve")
    def post(self, request, pk: int):
        sar = selectors.sar_for(request.user, pk, actor=_actor(request))
        try:
            sar = sar_services.sar_approve(actor=request.user, sar=sar)
        except REFUSED as error:
            return _refused(error)
        return Response(SarOutput(sar).data)


class SarExportApi(APIView):
    """goAML-style XML of the report, its transactions and parties."""

    @extend_schema(
        responses={(200, "application/xml"): OpenApiTypes.STR, **REFUSALS},
        operation_id="finance_sars_export_xml",
    )
    def get(self, request, pk: int):
        sar = selectors.sar_for(request.user, pk, actor=_actor(request))
        response = HttpResponse(sar_services.sar_goaml_xml(sar), content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="sar-{sar.pk}.xml"'
        return response


# --- scenarios -------------------------------------------------------------------------------------
class ScenarioVersionOutput(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", default=None, allow_null=True)
    approved_by = serializers.CharField(source="approved_by.username", default=None, allow_null=True)

    class Meta:
        model = ScenarioVersion
        fields = [
            "id",
            "code",
            "version",
            "params",
            "active",
            "note",
            "created_by",
            "approved_by",
            "approved_at",
            "retired_at",
            "created_at",
        ]


class ProposeInput(serializers.Serializer):
    code = serializers.CharField(max_length=64)
    params = serializers.DictField()
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class ScenarioListApi(APIView):
    """Scenario versions (GET); propose a new version of a scenario (POST, the maker)."""

    parser_classes = [LimitedJSONParser]

    @extend_schema(
        responses={200: ScenarioVersionOutput(many=True), 401: RefusalOutput},
        operation_id="finance_scenarios_list",
    )
    def get(self, request):
        from finance.services.scenarios import active_versions_or_seed

        active_versions_or_seed()
        return Response(
            ScenarioVersionOutput(selectors.scenario_versions_visible_to(request.user), many=True).data
        )

    @extend_schema(
        request=ProposeInput,
        responses={201: ScenarioVersionOutput, **REFUSALS},
        operation_id="finance_scenarios_propose",
    )
    def post(self, request):
        data = ProposeInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            version = services.scenario_version_propose(actor=request.user, **data.validated_data)
        except REFUSED as error:
            return _refused(error)
        return Response(ScenarioVersionOutput(version).data, status=status.HTTP_201_CREATED)


class ScenarioApproveApi(APIView):
    """Activate another officer's proposed version (the checker); the maker gets 403."""

    @extend_schema(
        request=None,
        responses={200: ScenarioVersionOutput, **REFUSALS},
        operation_id="finance_scenarios_approve",
    )
    def post(self, request, pk: int):
        version = selectors.scenario_version_for(request.user, pk, actor=_actor(request))
        try:
            version = services.scenario_version_approve(actor=request.user, version=version)
        except REFUSED as error:
            return _refused(error)
        return Response(ScenarioVersionOutput(version).data)


class ShadowInput(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    team = serializers.SlugField(required=False, allow_blank=True, default="", max_length=64)


class ScenarioShadowApi(APIView):
    """What this version would have alerted over a past period, next to the active version."""

    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(
        request=ShadowInput,
        responses={200: OpenApiTypes.OBJECT, **REFUSALS},
        operation_id="finance_scenarios_shadow",
    )
    def post(self, request, pk: int):
        version = selectors.scenario_version_for(request.user, pk, actor=_actor(request))
        data = ShadowInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        team = values["team"] or getattr(request.user, "department", "") or None
        if getattr(request.user, "department", "") and team != request.user.department:
            return Response({"detail": "Shadow runs cover your own team's transactions."}, status=403)
        try:
            result = services.scenario_version_shadow_run(
                actor=request.user,
                version=version,
                since=values["since"],
                until=values["until"] if values["until"].tzinfo else values["until"].replace(tzinfo=dt.UTC),
                team=team,
            )
        except REFUSED as error:
            return _refused(error)
        return Response(result)
