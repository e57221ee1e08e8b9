"""Encrypted-scoring API, mounted at /api/finance/he/ (namespace "finance_he_api")."""

from __future__ import annotations

import base64
import binascii

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from access.drf import PolicyPermission
from audit.actors import actor_from_request
from finance.he import params, services
from finance.he.scoring import HeInputError
from restapi.fields import UploadField
from restapi.parsers import LimitedJSONParser as JSONParser  # size and depth limits as 400


class _Unavailable(Response):
    def __init__(self, message: str):
        super().__init__({"detail": message}, status=status.HTTP_409_CONFLICT)


class HeModelApi(APIView):
    """The model a partner encrypts features for: feature order, version and CKKS parameters."""

    permission_classes = [PolicyPermission]
    policy_action = {"GET": "predict"}
    policy_resource = services.MODEL_RESOURCE

    class HeModelOutputSerializer(serializers.Serializer):
        model_version = serializers.CharField()
        feature_names = serializers.ListField(child=serializers.CharField())
        description = serializers.CharField()
        poly_modulus_degree = serializers.IntegerField()
        coeff_mod_bit_sizes = serializers.ListField(child=serializers.IntegerField())
        global_scale_bits = serializers.IntegerField()
        security_bits = serializers.IntegerField()

    @extend_schema(
        responses={200: HeModelOutputSerializer, 409: OpenApiResponse(description="no model trained")}
    )
    def get(self, request):
        try:
            scorer = services.current_scorer()
        except services.HeNotConfigured as error:
            return _Unavailable(str(error))
        return Response(
            {
                "model_version": scorer.version,
                "feature_names": list(scorer.feature_names),
                "description": scorer.description,
                "poly_modulus_degree": params.POLY_MODULUS_DEGREE,
                "coeff_mod_bit_sizes": list(params.COEFF_MOD_BIT_SIZES),
                "global_scale_bits": params.GLOBAL_SCALE_BITS,
                "security_bits": params.SECURITY_BITS,
            }
        )


class HeKeyApi(APIView):
    """Register a partner's public CKKS context (multipart field `context`), once per key pair."""

    permission_classes = [PolicyPermission]
    policy_action = {"POST": "predict"}
    policy_resource = services.MODEL_RESOURCE
    parser_classes = [MultiPartParser]

    class HeKeyInputSerializer(serializers.Serializer):
        context = UploadField(help_text="PartnerKeys.public_context() bytes")

    class HeKeyOutputSerializer(serializers.Serializer):
        key_id = serializers.CharField()

    @extend_schema(
        request={"multipart/form-data": HeKeyInputSerializer}, responses={201: HeKeyOutputSerializer}
    )
    def post(self, request):
        data = self.HeKeyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["context"]
        if upload.size > services.MAX_CONTEXT_BYTES:
            raise ValidationError({"context": [f"at most {services.MAX_CONTEXT_BYTES // 2**20} MiB"]})
        try:
            key_id = services.he_key_register(
                user=request.user, actor=actor_from_request(request), context_bytes=upload.read()
            )
        except HeInputError as error:
            raise ValidationError({"context": [str(error)]}) from error
        return Response({"key_id": key_id}, status=status.HTTP_201_CREATED)


class HeScoreApi(APIView):
    """The encrypted linear screening score of one encrypted feature vector."""

    permission_classes = [PolicyPermission]
    policy_action = {"POST": "predict"}
    policy_resource = services.MODEL_RESOURCE
    parser_classes = [JSONParser]

    class HeScoreInputSerializer(serializers.Serializer):
        key_id = serializers.CharField(max_length=64)
        ciphertext = serializers.CharField(help_text="base64 of PartnerKeys.encrypt(features)")

    class HeScoreOutputSerializer(serializers.Serializer):
        encrypted_score = serializers.CharField(help_text="base64; PartnerKeys.decrypt() reads it")
        model_version = serializers.CharField()
        feature_names = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        request=HeScoreInputSerializer,
        responses={200: HeScoreOutputSerializer, 409: OpenApiResponse(description="no model trained")},
    )
    def post(self, request):
        data = self.HeScoreInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            ciphertext = base64.b64decode(data.validated_data["ciphertext"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise ValidationError({"ciphertext": ["not valid base64"]}) from error
        try:
            result = services.he_score(
                user=request.user,
                actor=actor_from_request(request),
                key_id=data.validated_data["key_id"],
                ciphertext=ciphertext,
            )
        except services.HeNotConfigured as error:
            return _Unavailable(str(error))
        except HeInputError as error:  # {"detail": "..."}: the documented error body (a string, not a list)
            raise ValidationError({"detail": str(error)}) from error
        return Response(
            {
                "encrypted_score": base64.b64encode(result.ciphertext).decode("ascii"),
                "model_version": result.model_version,
                "feature_names": list(result.feature_names),
            }
        )
