"""The assistant: a failure-mode suggestion on a work order, and the engineer's verdict on it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser
from rest_framework.response import Response
from rest_framework.views import APIView

from manufacturing import selectors
from manufacturing.api import MaintenanceRefusal, refused, request_actor
from manufacturing.models import FailureSuggestion
from manufacturing.services.assistant import SuggestionRefused, assistant_suggest, suggestion_review
from restapi.parsers import LimitedJSONParser as JSONParser  # size and depth limits as 400


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
        work_order = selectors.work_order_for(request.user, pk, actor=request_actor(request))
        data = FailureSuggestInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            suggestion = assistant_suggest(
                actor=request.user, work_order=work_order, problem=data.validated_data["problem"]
            )
        except SuggestionRefused as refusal:
            return refused(str(refusal))
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
        suggestion = selectors.suggestion_for(request.user, pk, actor=request_actor(request))
        data = FailureSuggestionReviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            suggestion = suggestion_review(
                actor=request.user, suggestion=suggestion, code=data.validated_data["code"]
            )
        except SuggestionRefused as refusal:
            return refused(str(refusal))
        return Response(FailureSuggestionOutput(suggestion).data)
