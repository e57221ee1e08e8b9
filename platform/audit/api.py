"""REST API of the decision trail: list, detail (with verification), verify and export."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import actor_from_request
from audit.export import CONTENT_TYPES, EXPORT_FORMATS, export_response
from audit.models import Outcome
from audit.permissions import DENIAL_MESSAGES, EXPORT, READ, check_trail_access, unseal_decision
from audit.sealing import has_sealed_texts, open_texts
from audit.selectors import chain_names, events_for, events_for_export
from audit.services import trail_export_log, trail_read_log
from audit.verification import ProblemKind, verify_chain

# --- permissions -------------------------------------------------------------------------------


class CanReadTrail(BasePermission):
    message = DENIAL_MESSAGES[READ]

    def has_permission(self, request, view) -> bool:
        return check_trail_access(request, action=READ, chain=request.query_params.get("chain") or "*")


class CanExportTrail(BasePermission):
    message = DENIAL_MESSAGES[EXPORT]

    def has_permission(self, request, view) -> bool:
        return check_trail_access(request, action=EXPORT, chain=request.query_params.get("chain") or "*")


# --- serializers -------------------------------------------------------------------------------


class EventFilter(serializers.Serializer):
    chain = serializers.CharField(required=False, allow_blank=True, max_length=64)
    actor = serializers.CharField(required=False, allow_blank=True, help_text="Part of the actor label.")
    action = serializers.CharField(required=False, allow_blank=True, help_text='Prefix, e.g. "auth.".')
    resource_type = serializers.CharField(required=False, allow_blank=True)
    resource_id = serializers.CharField(required=False, allow_blank=True)
    outcome = serializers.ChoiceField(choices=Outcome.choices, required=False, allow_blank=True)
    since = serializers.DateTimeField(required=False, help_text="Inclusive.")
    until = serializers.DateTimeField(required=False, help_text="Exclusive.")


class ExportFilter(serializers.Serializer):
    chain = serializers.CharField(required=False, allow_blank=True, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="Inclusive.")
    until = serializers.DateTimeField(required=False, help_text="Exclusive.")


class EventOutput(serializers.Serializer):
    id = serializers.IntegerField()
    chain = serializers.CharField()
    sequence = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    actor_kind = serializers.CharField()
    actor_label = serializers.CharField()
    actor_user = serializers.IntegerField(source="actor_user_id", allow_null=True)
    action = serializers.CharField()
    resource_type = serializers.CharField()
    resource_id = serializers.CharField()
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    policy = serializers.CharField()
    payload = serializers.JSONField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()


class ProblemOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=[(kind.value, kind.value) for kind in ProblemKind])
    message = serializers.CharField()
    sequence = serializers.IntegerField(allow_null=True)
    checkpoint_id = serializers.IntegerField(allow_null=True)


class VerificationOutput(serializers.Serializer):
    chain = serializers.CharField()
    ok = serializers.BooleanField()
    events_verified = serializers.IntegerField()
    checkpoints_verified = serializers.IntegerField()
    last_sequence = serializers.IntegerField()
    first_bad_sequence = serializers.IntegerField(allow_null=True)
    problem = ProblemOutput(allow_null=True)


class EventDetailOutput(EventOutput):
    verification = serializers.SerializerMethodField(help_text="Whether the chain verifies up to this event.")

    @extend_schema_field(VerificationOutput)
    def get_verification(self, event) -> dict:
        return VerificationOutput(verify_chain(event.chain, up_to=event.sequence)).data


class TrailVerifyOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    chains = VerificationOutput(many=True)


# --- renderers (export formats, selected with ?format=jsonl|csv) --------------------------------


class JsonLinesRenderer(BaseRenderer):
    media_type = CONTENT_TYPES["jsonl"]
    format = "jsonl"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        # Exports stream past the renderer; only error bodies are rendered here.
        return (json.dumps(data, ensure_ascii=False) + "\n").encode("utf-8")


class CsvRenderer(BaseRenderer):
    media_type = CONTENT_TYPES["csv"]
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        detail = data.get("detail", data) if isinstance(data, dict) else data
        return f"detail\n{json.dumps(detail, ensure_ascii=False)}\n".encode()


# --- views -------------------------------------------------------------------------------------


@extend_schema(tags=["audit"])
class EventListApi(generics.ListAPIView):
    """Trail events, newest first, with filters: only the event types the policy lets the reader read
    (trail_event:<type>: auditors every event, compliance officers AML events, admins platform events)."""

    permission_classes = [IsAuthenticated, CanReadTrail]
    serializer_class = EventOutput

    def get_queryset(self):
        filters = EventFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return events_for(self.request.user, **filters.validated_data)

    @extend_schema(parameters=[EventFilter])
    def get(self, request: Request, *args, **kwargs) -> Response:
        response = super().get(request, *args, **kwargs)
        shown = response.data["results"] if isinstance(response.data, dict) else response.data
        trail_read_log(
            actor=actor_from_request(request),
            event_ids=[row["id"] for row in shown],
            filters={key: value for key, value in request.query_params.items() if key != "format"},
        )
        return response


@extend_schema(tags=["audit"])
class EventDetailApi(generics.RetrieveAPIView):
    """One event with its payload, and whether the chain verifies up to it."""

    permission_classes = [IsAuthenticated, CanReadTrail]
    serializer_class = EventDetailOutput

    def get_queryset(self):
        return events_for(self.request.user)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "unseal",
                OpenApiTypes.BOOL,
                description="Also open the sealed texts of the payload (as `opened_texts`): roles the "
                "policy allows ('unseal' on trail_event:<type>) only; each opening is trailed.",
            )
        ]
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        event = self.get_object()
        data = dict(self.get_serializer(event).data)
        trail_read_log(actor=actor_from_request(request), event_ids=[event.id])
        if request.query_params.get("unseal") in ("1", "true") and has_sealed_texts(event):
            decision = unseal_decision(request.user, event.resource_type, actor=actor_from_request(request))
            if decision is None or not decision.allowed:
                raise PermissionDenied(
                    "The access policy does not let your role open sealed texts of these events."
                )
            data["opened_texts"] = open_texts(event)
        return Response(data)


@extend_schema(tags=["audit"])
class TrailVerifyApi(APIView):
    """Recompute one chain (or all) and report the first problem, as `manage.py verify_trail` does."""

    permission_classes = [IsAuthenticated, CanReadTrail]

    @extend_schema(
        parameters=[
            OpenApiParameter("chain", OpenApiTypes.STR, description="Only this chain (default: all).")
        ],
        responses={200: TrailVerifyOutput, 404: OpenApiResponse(description="No such chain.")},
    )
    def get(self, request: Request) -> Response:
        known = chain_names()
        chain = request.query_params.get("chain")
        if chain and chain not in known:
            raise NotFound(f"No chain named {chain!r}.")
        results = [verify_chain(name) for name in ([chain] if chain else known)]
        return Response(
            TrailVerifyOutput({"ok": all(result.ok for result in results), "chains": results}).data
        )


@extend_schema(tags=["audit"])
class TrailExportApi(APIView):
    """Download whole chains over a time range, with hashes, for re-verification (see audit.export).

    Choose the format with `?format=jsonl` (default) or `?format=csv`. Auditors and admins.
    """

    permission_classes = [IsAuthenticated, CanExportTrail]
    renderer_classes = [JsonLinesRenderer, CsvRenderer]

    def handle_exception(self, exc):
        # Errors are JSON like every other /api/ error, whatever export format was asked for.
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    @extend_schema(
        parameters=[
            ExportFilter,
            OpenApiParameter(
                "format", OpenApiTypes.STR, enum=list(EXPORT_FORMATS), description="jsonl or csv."
            ),
        ],
        responses={
            (200, CONTENT_TYPES["jsonl"]): OpenApiTypes.STR,
            (200, CONTENT_TYPES["csv"]): OpenApiTypes.STR,
        },
    )
    def get(self, request: Request):
        filters = ExportFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        selected = {key: filters.validated_data.get(key) or None for key in ("chain", "since", "until")}
        export_format = request.accepted_renderer.format
        trail_export_log(actor=actor_from_request(request), export_format=export_format, **selected)
        return export_response(events_for_export(request.user, **selected), export_format)
