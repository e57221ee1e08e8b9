"""Suspicious activity reports: drafted from a case, edited, approved, exported as goAML XML."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from finance import selectors
from finance.api import REFUSALS, REFUSED, refused, request_actor
from finance.models import SAR
from finance.services import sar as sar_services
from restapi.parsers import LimitedJSONParser


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
        case = selectors.case_for(request.user, pk, actor=request_actor(request))
        data = SarDraftInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            sar = sar_services.sar_draft(
                actor=request.user, case=case, use_model=data.validated_data["use_model"]
            )
        except REFUSED as error:
            return refused(error)
        return Response(SarOutput(sar).data, status=status.HTTP_201_CREATED)


class SarEditInput(serializers.Serializer):
    text = serializers.CharField(max_length=50000)


class SarDetailApi(APIView):
    parser_classes = [LimitedJSONParser, FormParser]

    @extend_schema(responses={200: SarOutput, **REFUSALS}, operation_id="finance_sars_retrieve")
    def get(self, request, pk: int):
        return Response(SarOutput(selectors.sar_for(request.user, pk, actor=request_actor(request))).data)

    @extend_schema(
        request=SarEditInput, responses={200: SarOutput, **REFUSALS}, operation_id="finance_sars_edit"
    )
    def post(self, request, pk: int):
        sar = selectors.sar_for(request.user, pk, actor=request_actor(request))
        data = SarEditInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            sar = sar_services.sar_edit(actor=request.user, sar=sar, text=data.validated_data["text"])
        except REFUSED as error:
            return refused(error)
        return Response(SarOutput(sar).data)


class SarApproveApi(APIView):
    """A second officer approves the SAR; whoever drafted or edited it gets 403 (four eyes)."""

    @extend_schema(request=None, responses={200: SarOutput, **REFUSALS}, operation_id="finance_sars_approve")
    def post(self, request, pk: int):
        sar = selectors.sar_for(request.user, pk, actor=request_actor(request))
        try:
            sar = sar_services.sar_approve(actor=request.user, sar=sar)
        except REFUSED as error:
            return refused(error)
        return Response(SarOutput(sar).data)


class SarExportApi(APIView):
    """goAML-style XML of the report, its transactions and parties."""

    @extend_schema(
        responses={(200, "application/xml"): OpenApiTypes.STR, **REFUSALS},
        operation_id="finance_sars_export_xml",
    )
    def get(self, request, pk: int):
        sar = selectors.sar_for(request.user, pk, actor=request_actor(request))
        response = HttpResponse(sar_services.sar_goaml_xml(sar), content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="sar-{sar.pk}.xml"'
        return response
