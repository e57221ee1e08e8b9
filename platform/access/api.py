"""API: explain a decision of the access policy (GET /api/access/explain)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.drf import PolicyPermission
from access.policy import POLICY_RESOURCE_NAME
from access.selectors import ExplainError, explain


class ConditionResultOutput(serializers.Serializer):
    rule = serializers.CharField()
    condition = serializers.CharField(
        help_text='As written in the policy, e.g. "resource.department: subject.department".'
    )
    expected = serializers.CharField()
    actual = serializers.CharField()
    passed = serializers.BooleanField()


class RuleEvaluationOutput(serializers.Serializer):
    rule = serializers.CharField()
    effect = serializers.ChoiceField(choices=["allow", "deny"])
    line = serializers.IntegerField(help_text="Line of the rule in the policy file.")
    matched_subject = serializers.CharField(allow_null=True)
    matched_resource = serializers.CharField(allow_null=True)
    conditions = ConditionResultOutput(many=True)
    require_grant = serializers.BooleanField()
    grant = serializers.CharField(allow_null=True)
    applies = serializers.BooleanField()
    note = serializers.CharField()


class ExplanationOutput(serializers.Serializer):
    allowed = serializers.BooleanField()
    policy = serializers.CharField(
        allow_null=True, help_text="The rule that decided; null when no rule applied."
    )
    reason = serializers.CharField()
    grant = serializers.CharField(allow_null=True, help_text="The per-object grant used, if any.")
    subject = serializers.CharField()
    action = serializers.CharField()
    resource = serializers.CharField()
    conditions = ConditionResultOutput(many=True)
    rules = RuleEvaluationOutput(many=True, help_text="Every rule naming this resource type and action.")
    subject_attributes = serializers.DictField()
    resource_attributes = serializers.DictField(child=serializers.CharField())
    policy_file = serializers.CharField()
    policy_sha256 = serializers.CharField()


class ExplainApi(APIView):
    """May a user do an action on a resource, and why: the deciding rule, every candidate rule with
    its conditions evaluated, and the grant used. For administrators and auditors (the policy's
    "explain" action on policy:suite)."""

    permission_classes = [PolicyPermission]
    policy_action = "explain"
    policy_resource = f"policy:{POLICY_RESOURCE_NAME}"

    class Input(serializers.Serializer):
        user = serializers.CharField(max_length=150, help_text="User name.")
        action = serializers.CharField(max_length=64, help_text="e.g. view, predict, export.")
        resource = serializers.CharField(
            max_length=200, required=False, default="", help_text='"type:name", e.g. "model:medical_qa".'
        )
        resource_type = serializers.CharField(
            max_length=64, required=False, default="", help_text="With resource_id: an object of this type."
        )
        resource_id = serializers.CharField(max_length=64, required=False, default="")

    @extend_schema(parameters=[Input], responses=ExplanationOutput, operation_id="access_explain")
    def get(self, request: Request) -> Response:
        query = self.Input(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        if bool(data["resource"]) == bool(data["resource_type"] or data["resource_id"]):
            raise ValidationError(
                {"resource": ["Give either resource=type:name, or resource_type and resource_id."]}
            )
        try:
            explanation = explain(
                username=data["user"],
                action=data["action"],
                resource=data["resource"],
                resource_type=data["resource_type"],
                resource_id=data["resource_id"],
            )
        except ExplainError as error:
            raise ValidationError({error.field: [str(error)]}) from None
        return Response(ExplanationOutput(explanation.as_dict()).data)
