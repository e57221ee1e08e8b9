"""REST API of the model registry (mounted at /api/models/): list the models the caller may use,
register a model directory. Serving itself is the OpenAI-compatible /v1 API (inference.openai_api).

Errors: 400 {"field": ["message"]} for input to fix, 403 when the policy refuses (trailed).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import actor_from_request
from inference import registry
from inference.models import LanguageModel
from inference.selectors import models_for


class ModelOutput(serializers.ModelSerializer):
    draft = serializers.CharField(source="draft.name", default=None, allow_null=True)

    class Meta:
        model = LanguageModel
        fields = [
            "name", "description", "backend", "path", "remote_url", "remote_model", "architecture",
            "parameter_count", "dtype", "context_length", "vocab_size", "quantization", "draft",
            "max_concurrency", "max_queue", "created_at", "gguf_path", "licence", "engine",
        ]  # fmt: skip


class ModelRegisterInput(serializers.Serializer):
    path = serializers.CharField(
        help_text="Model directory (Hugging Face format) inside MODEL_ROOT, or relative to it."
    )
    name = serializers.CharField(max_length=64, help_text="Registry name, e.g. medical_qa.")
    description = serializers.CharField(max_length=300, required=False, default="", allow_blank=True)
    quantization = serializers.CharField(
        required=False, default="none", help_text="none, int8 (CPU) or int4 (GPU)."
    )
    draft = serializers.CharField(required=False, default="", allow_blank=True, help_text="Draft model name.")
    replace = serializers.BooleanField(
        required=False, default=False, help_text="Replace a model of that name."
    )


class ModelRegistryApi(APIView):
    """Models the caller may use (GET); register a model directory (POST, the policy's `register`)."""

    @extend_schema(responses=ModelOutput(many=True), operation_id="models_list")
    def get(self, request):
        return Response(ModelOutput(models_for(request.user).order_by("name"), many=True).data)

    @extend_schema(
        request=ModelRegisterInput,
        responses={
            201: ModelOutput,
            400: OpenApiResponse(description="Fields to fix."),
            403: OpenApiResponse(description="The access policy does not allow this (trailed)."),
        },
        operation_id="models_register",
    )
    def post(self, request):
        data = ModelRegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        try:
            model = registry.model_register_checked(
                user=request.user,
                actor=actor_from_request(request),
                **values,
            )
        except registry.RegistrationRefused as refusal:
            raise ValidationError(
                {field: [message] for field, message in refusal.errors.items()}
            ) from refusal
        return Response(ModelOutput(model).data, status=status.HTTP_201_CREATED)
