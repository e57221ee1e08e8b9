from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.tokens import token_issue


class MeView(APIView):
    """Who am I: the authenticated user's roles and ABAC attributes."""

    class Output(serializers.Serializer):
        username = serializers.CharField()
        full_name = serializers.CharField()
        roles = serializers.ListField(child=serializers.CharField())
        department = serializers.CharField()
        site = serializers.CharField()
        certifications = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses=Output)
    def get(self, request: Request) -> Response:
        user = request.user
        data = {
            "username": user.username,
            "full_name": user.get_full_name(),
            "roles": [role.value for role in user.roles],
            "department": user.department,
            "site": user.site,
            "certifications": user.certifications,
        }
        return Response(self.Output(data).data)


class CredentialsInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})

    def validate(self, attrs):
        # The HttpRequest (not DRF's wrapper): django-axes counts the failure per account and address.
        request = self.context["request"]._request
        user = authenticate(request, username=attrs["username"], password=attrs["password"])
        if user is None or not user.is_active:
            raise serializers.ValidationError(
                "Unable to sign in with these credentials.", code="authorization"
            )
        attrs["user"] = user
        return attrs


class IssueTokenView(APIView):
    """POST username + password: a new hashed, expiring API token (`{"token": key, "expiry": ...}`)."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "token_issue"

    class IssuedToken(serializers.Serializer):
        token = serializers.CharField()
        expiry = serializers.DateTimeField()

    @extend_schema(request=CredentialsInput, responses=IssuedToken)
    def post(self, request):
        serializer = CredentialsInput(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        instance, key = token_issue(user=serializer.validated_data["user"])
        return Response({"token": key, "expiry": instance.expiry})
