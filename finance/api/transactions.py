"""Transactions: a batch screened all-or-nothing, one screened in real time."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from finance import services
from finance.api import REFUSED, BatchRefusalOutput, RefusalOutput, refused
from restapi.parsers import LimitedJSONParser


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
            return refused(error)
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
            return refused(error)
        return Response(result.decisions[0])
