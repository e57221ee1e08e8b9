"""Scenario versions: proposed, approved (four eyes) and shadow-run against stored transactions."""

from __future__ import annotations

import datetime as dt

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from finance import selectors, services
from finance.api import REFUSALS, REFUSED, RefusalOutput, refused, request_actor
from finance.models import ScenarioVersion
from finance.services.scenarios import active_versions_or_seed
from restapi.parsers import LimitedJSONParser


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
            return refused(error)
        return Response(ScenarioVersionOutput(version).data, status=status.HTTP_201_CREATED)


class ScenarioApproveApi(APIView):
    """Activate another officer's proposed version (the checker); the maker gets 403."""

    @extend_schema(
        request=None,
        responses={200: ScenarioVersionOutput, **REFUSALS},
        operation_id="finance_scenarios_approve",
    )
    def post(self, request, pk: int):
        version = selectors.scenario_version_for(request.user, pk, actor=request_actor(request))
        try:
            version = services.scenario_version_approve(actor=request.user, version=version)
        except REFUSED as error:
            return refused(error)
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
        version = selectors.scenario_version_for(request.user, pk, actor=request_actor(request))
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
            return refused(error)
        return Response(result)
