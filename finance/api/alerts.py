"""Alerts: list, detail, replay of the decision, whitelisting a match, assignment."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from finance import selectors, services
from finance.api import REFUSALS, REFUSED, RefusalOutput, refused, request_actor
from finance.models import Alert
from finance.services import sanctions as sanctions_services
from restapi.parsers import LimitedJSONParser


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
        return Response(
            AlertDetailOutput(selectors.alert_for(request.user, pk, actor=request_actor(request))).data
        )


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
        alert = selectors.alert_for(request.user, pk, actor=request_actor(request))
        try:
            result = services.alert_replay(alert_id=alert.pk)
        except services.FinanceRefused as error:
            return refused(error)
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
        alert = selectors.alert_for(request.user, pk, actor=request_actor(request))
        try:
            row = sanctions_services.match_whitelist(actor=request.user, alert=alert, **data.validated_data)
        except REFUSED as error:
            return refused(error)
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
            request.user, data.validated_data["alerts"], action="view", actor=request_actor(request)
        )
        assignee = User.objects.filter(username=data.validated_data["assignee"], is_active=True).first()
        if assignee is None:
            return Response({"detail": "No such active user."}, status=status.HTTP_400_BAD_REQUEST)
        try:
            count = services.alerts_assign(actor=request.user, alerts=alerts, assignee=assignee)
        except REFUSED as error:
            return refused(error)
        return Response({"assigned": count, "assignee": assignee.username})
