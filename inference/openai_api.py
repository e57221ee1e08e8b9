"""OpenAI-compatible endpoints: /v1/models, /v1/chat/completions, /v1/completions.

The official `openai` client works against them unchanged. Errors use OpenAI's error object:
{"error": {"message", "type", "param", "code"}}. Suite extensions in the request body:
`adapter` (a promoted LoRA adapter, also selectable as model "base:adapter"), `session_id`
(multi-turn KV cache reuse), `speculative` ("none", "draft", "prompt_lookup") and `top_k`.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from access.errors import PolicyDenied
from inference import embeddings
from inference.engine.types import (
    SPECULATIVE_MODES,
    ContextLengthExceeded,
    EngineError,
    GenerationParams,
    InvalidRequest,
    Overloaded,
    RemoteEngineError,
)
from inference.selectors import servable_targets
from inference.services import Completion, ModelNotFound, completion_create, completion_stream

logger = logging.getLogger(__name__)


def error_response(status: int, message: str, *, kind: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> Response:  # fmt: skip
    return Response(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status=status,
        headers=headers,
    )


class _JSONAnswers(DefaultContentNegotiation):
    """/v1 answers JSON (or a text/event-stream it builds itself) whatever the Accept header asks,
    as OpenAI's API does: no Accept header to parse and match on every request."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class OpenAIView(APIView):
    """Renders every failure as an OpenAI error object with the right status."""

    renderer_classes = [JSONRenderer]
    content_negotiation_class = _JSONAnswers

    def handle_exception(self, exc):
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            return error_response(
                401, "Missing or invalid API key: send `Authorization: Bearer <token>`.",
                kind="invalid_request_error", code="invalid_api_key",
                headers={"WWW-Authenticate": 'Bearer realm="suite"'},
            )  # fmt: skip
        if isinstance(exc, PolicyDenied):
            return error_response(403, str(exc), kind="permission_error", code="permission_denied")
        if isinstance(exc, exceptions.PermissionDenied):
            return error_response(403, str(exc.detail), kind="permission_error", code="permission_denied")
        if isinstance(exc, exceptions.ParseError):
            return error_response(400, f"Malformed JSON body: {exc.detail}", kind="invalid_request_error")
        if isinstance(exc, exceptions.ValidationError):
            param, message = _first_error(exc.detail)
            return error_response(400, message, kind="invalid_request_error", param=param)
        if isinstance(exc, ModelNotFound):
            return error_response(
                404, str(exc), kind="invalid_request_error", param="model", code="model_not_found"
            )
        if isinstance(exc, ContextLengthExceeded):
            return error_response(400, str(exc), kind="invalid_request_error", param="messages",
                                  code="context_length_exceeded")  # fmt: skip
        if isinstance(exc, exceptions.Throttled):
            return error_response(
                429, f"Too many requests: {exc.detail}", kind="rate_limit_error", code="rate_limit_exceeded",
                headers={"Retry-After": str(exc.wait and max(1, round(exc.wait)) or 1)},
            )  # fmt: skip
        if isinstance(exc, Overloaded):
            retry = max(1, round(exc.retry_after_s))
            return error_response(429, str(exc), kind="rate_limit_error", code="model_overloaded",
                                  headers={"Retry-After": str(retry)})  # fmt: skip
        if isinstance(exc, InvalidRequest):
            return error_response(400, str(exc), kind="invalid_request_error")
        if isinstance(exc, RemoteEngineError):
            return error_response(
                502, f"The remote model server failed: {exc}", kind="api_error", code="upstream_error"
            )
        if isinstance(exc, EngineError):
            return error_response(500, str(exc), kind="api_error")
        if isinstance(exc, exceptions.MethodNotAllowed):
            return error_response(405, str(exc.detail), kind="invalid_request_error")
        if isinstance(exc, exceptions.APIException):
            return error_response(exc.status_code, str(exc.detail), kind="invalid_request_error",
                                  code=exc.default_code)  # fmt: skip
        logger.exception("Unhandled error in %s", type(self).__name__)
        return error_response(500, "The server failed to handle the request; it has been logged.",
                              kind="api_error", code="internal_error")  # fmt: skip


def openai_error_body(exc: BaseException) -> dict:
    """The OpenAI error object for an exception (what a stream sends after its headers)."""
    response = OpenAIView().handle_exception(exc)
    return response.data


@csrf_exempt  # it changes nothing: a POST without a CSRF token gets this 404 too, not Django's HTML 403
def not_found(request, *args, **kwargs):
    """Any other /v1 path: an OpenAI error object, not an HTML page."""
    return JsonResponse(
        {"error": {"message": f"Unknown endpoint {request.method} {request.path}.",
                   "type": "invalid_request_error", "param": None, "code": "unknown_url"}},
        status=404,
    )  # fmt: skip


def _first_error(detail, prefix: str = "") -> tuple[str | None, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # DRF keys list-item errors by index
                return _first_error(value, f"{prefix}[{key}]")
            name = key if key != "non_field_errors" else ""
            param = f"{prefix}.{name}" if prefix and name else (name or prefix)
            return _first_error(value, param)
    if isinstance(detail, list) and detail:
        first = detail[0]
        if isinstance(first, dict | list):
            index = next(i for i, item in enumerate(detail) if item)
            return _first_error(detail[index], f"{prefix}[{index}]")
        return prefix or None, f"{prefix}: {first}" if prefix else str(first)
    return prefix or None, str(detail)


@extend_schema_field(
    {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]}
)
class StopField(serializers.Field):
    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        if not isinstance(data, list) or not all(isinstance(s, str) and s for s in data) or len(data) > 4:
            raise serializers.ValidationError("stop must be a non-empty string or a list of up to 4 of them.")
        return data

    def to_representation(self, value):
        return value


class MessageInput(serializers.Serializer):
    """One chat message, as the schema shows it (validated by MessagesField)."""

    role = serializers.ChoiceField(choices=["system", "user", "assistant"])
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


MESSAGE_ROLES = ("system", "user", "assistant")


@extend_schema_field(MessageInput(many=True))
class MessagesField(serializers.Field):
    """`messages`: a non-empty list of {role, content}, checked in one pass with DRF's messages and
    error shape ({index: {field: [message]}}, so the error names `messages[0].role`), instead of a
    nested serializer that deep-copies its fields and runs a serializer per message on every request."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError(
                f'Expected a list of items but got type "{type(data).__name__}".'
            )
        if not data:
            raise serializers.ValidationError("This list may not be empty.")
        messages, errors = [], {}
        for index, item in enumerate(data):
            if not isinstance(item, dict):
                errors[index] = {
                    "non_field_errors": [
                        f"Invalid data. Expected a dictionary, but got {type(item).__name__}."
                    ]
                }
                continue
            problems, role, content = {}, item.get("role"), item.get("content")
            if "role" not in item:
                problems["role"] = ["This field is required."]
            elif role is None:
                problems["role"] = ["This field may not be null."]
            elif not isinstance(role, str) or role not in MESSAGE_ROLES:
                problems["role"] = [f'"{role}" is not a valid choice.']
            if "content" not in item:
                problems["content"] = ["This field is required."]
            elif content is None:
                problems["content"] = ["This field may not be null."]
            elif isinstance(content, bool) or not isinstance(content, str | int | float):
                problems["content"] = ["Not a valid string."]
            if problems:
                errors[index] = problems
            else:
                messages.append({"role": role, "content": str(content)})
        if errors:
            raise serializers.ValidationError(errors)
        return messages

    def to_representation(self, value):
        return value


class SamplingInput(serializers.Serializer):
    model = serializers.CharField()
    max_tokens = serializers.IntegerField(min_value=1, max_value=32768, required=False, default=128)
    max_completion_tokens = serializers.IntegerField(min_value=1, max_value=32768, required=False)
    temperature = serializers.FloatField(min_value=0.0, max_value=2.0, required=False, default=1.0)
    top_p = serializers.FloatField(min_value=0.0, max_value=1.0, required=False, default=1.0)
    top_k = serializers.IntegerField(min_value=0, required=False, default=0)
    n = serializers.IntegerField(min_value=1, max_value=1, required=False, default=1)
    # Every engine takes a 32-bit seed (llama.cpp's is unsigned 32-bit): larger ones are a 400, not a 500.
    seed = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=0, max_value=2**32 - 1
    )
    stop = StopField(required=False, default=list)
    stream = serializers.BooleanField(required=False, default=False)
    user = serializers.CharField(required=False, allow_blank=True)
    adapter = serializers.CharField(required=False, allow_null=True, default=None)
    session_id = serializers.CharField(required=False, allow_null=True, default=None, max_length=200)
    speculative = serializers.ChoiceField(choices=list(SPECULATIVE_MODES), required=False, default="none")

    @property
    def fields(self):
        """DRF deep-copies every declared field for each new serializer (most of what validating a
        request body cost); these fields keep nothing of a request (no instance, context or partial
        update), so each input class binds one set, once, and every request validates with it."""
        bound = type(self).__dict__.get("_bound_fields")
        if bound is None:
            bound = serializers.Serializer.fields.func(self)
            type(self)._bound_fields = bound
        return bound

    def validate_top_p(self, value):
        if value <= 0:
            raise serializers.ValidationError("top_p must be greater than 0.")
        return value

    def params(self) -> GenerationParams:
        data = self.validated_data
        return GenerationParams(
            max_tokens=data.get("max_completion_tokens") or data["max_tokens"],
            temperature=data["temperature"],
            top_p=data["top_p"],
            top_k=data["top_k"],
            seed=data["seed"],
            stop=data["stop"],
            speculative=data["speculative"],
        )


class ChatInput(SamplingInput):
    messages = MessagesField()


class CompletionInput(SamplingInput):
    prompt = serializers.CharField(allow_blank=False, trim_whitespace=False)


def _usage(result) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": result.cached_prompt_tokens},
    }


def _sse(payload) -> bytes:
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


class _GenerationView(OpenAIView):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "inference"  # per user, settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    input_class: type[SamplingInput]
    endpoint: str
    object_name: str

    def prompt(self, data):
        raise NotImplementedError

    def post(self, request):
        body = self.input_class(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        model = data["model"]
        if data["adapter"]:  # the `adapter` field names the adapter: it wins over a `base:adapter` model
            model = f"{model.partition(':')[0]}:{data['adapter']}"
        kwargs = {
            "user": request.user,
            "target": model,  # resolved once, by the service (ModelNotFound: 404)
            "prompt": self.prompt(data),
            "params": body.params(),
            "endpoint": self.endpoint,
            "session_id": data["session_id"],
            "actor": request.auth if request.auth is not None else request.user,
        }
        created = int(time.time())
        if not data["stream"]:
            completion = completion_create(**kwargs)
            return Response(self.render(completion, created))
        stream = completion_stream(**kwargs)  # authorization and admission happen here, before any byte
        return _SSEResponse(stream, self, stream.target.public_name, created)

    def render(self, completion, created) -> dict:
        raise NotImplementedError


class _SSEResponse(StreamingHttpResponse):
    def __init__(self, stream, view, model_name, created):
        self._stream = stream
        identifier = f"{view.id_prefix}-{uuid.uuid4().hex}"

        def events():
            if view.endpoint == "chat.completions":
                yield _sse(
                    view.chunk(identifier, created, model_name, {"role": "assistant", "content": ""}, None)
                )
            try:
                for item in stream:
                    if isinstance(item, Completion):
                        yield _sse(view.chunk(identifier, created, model_name, {}, item.result.finish_reason,
                                              usage=_usage(item.result)))  # fmt: skip
                    else:
                        yield _sse(
                            view.chunk(identifier, created, model_name, {"content": item}, None, text=item)
                        )
            except Exception as exc:  # the headers are sent: the error travels as an event
                yield _sse(openai_error_body(exc))
            yield b"data: [DONE]\n\n"

        super().__init__(events(), content_type="text/event-stream")
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"
        # Closing the response (client gone) closes the stream and frees the model slot.
        self._resource_closers.append(stream.close)


@extend_schema(tags=["OpenAI-compatible"])
class ChatCompletionsApi(_GenerationView):
    input_class = ChatInput
    endpoint = "chat.completions"
    id_prefix = "chatcmpl"

    def prompt(self, data):
        return data["messages"]  # MessagesField's fresh {role, content} dicts

    @extend_schema(
        request=ChatInput, responses={200: OpenApiResponse(description="chat.completion or SSE chunks")}
    )
    def post(self, request):
        return super().post(request)

    def render(self, completion, created) -> dict:
        result = completion.result
        return {
            "id": f"chatcmpl-{completion.generation_id}",
            "object": "chat.completion",
            "created": created,
            "model": completion.target.public_name,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result.text},
                    "finish_reason": result.finish_reason,
                    "logprobs": None,
                }
            ],  # fmt: skip
            "usage": _usage(result),
            "system_fingerprint": f"suite-{completion.target.model.id}",
        }

    def chunk(self, identifier, created, model, delta, finish_reason, usage=None, text=None) -> dict:
        body = {
            "id": identifier,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
        }
        if usage:
            body["usage"] = usage
        return body


@extend_schema(tags=["OpenAI-compatible"])
class CompletionsApi(_GenerationView):
    input_class = CompletionInput
    endpoint = "completions"
    id_prefix = "cmpl"

    def prompt(self, data):
        return data["prompt"]

    @extend_schema(
        request=CompletionInput, responses={200: OpenApiResponse(description="text_completion or SSE")}
    )
    def post(self, request):
        return super().post(request)

    def render(self, completion, created) -> dict:
        result = completion.result
        return {
            "id": f"cmpl-{completion.generation_id}",
            "object": "text_completion",
            "created": created,
            "model": completion.target.public_name,
            "choices": [
                {"index": 0, "text": result.text, "finish_reason": result.finish_reason, "logprobs": None}
            ],
            "usage": _usage(result),
        }

    def chunk(self, identifier, created, model, delta, finish_reason, usage=None, text=None) -> dict:
        body = {
            "id": identifier,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "text": text or "", "finish_reason": finish_reason, "logprobs": None}],
        }
        if usage:
            body["usage"] = usage
        return body


@extend_schema(
    tags=["OpenAI-compatible"],
    responses=inline_serializer(
        "ModelList", {"object": serializers.CharField(), "data": serializers.ListField()}
    ),
)
class ModelsApi(OpenAIView):
    def get(self, request):
        data = [model_entry(model, adapter) for model, adapter in servable_targets(request.user)]
        return Response({"object": "list", "data": data})


def model_entry(model, adapter) -> dict:
    return {
        "id": f"{model.name}:{adapter.name}" if adapter else model.name,
        "object": "model",
        "created": int((adapter or model).created_at.timestamp()),
        "owned_by": "suite",
        "root": model.name,
        "parent": model.name if adapter else None,
        "context_length": model.context_length or None,
        "parameters": model.parameter_count or None,
        "quantization": model.quantization,
        "licence": model.licence or None,
        "engine": model.engine,
    }


@extend_schema(
    tags=["OpenAI-compatible"],
    responses=inline_serializer("Model", {"id": serializers.CharField()}),
)
class ModelApi(OpenAIView):
    """GET /v1/models/{id}: one model (or `base:adapter`) the caller may use; 404 otherwise."""

    @extend_schema(operation_id="v1_model_retrieve")
    def get(self, request, model_id: str):
        for model, adapter in servable_targets(request.user):
            if model_id == (f"{model.name}:{adapter.name}" if adapter else model.name):
                return Response(model_entry(model, adapter))
        raise ModelNotFound(model_id)


class EmbeddingsRequest(serializers.Serializer):
    model = serializers.CharField(required=False, default="all-MiniLM-L6-v2")
    input = serializers.JSONField()

    def validate_input(self, value):
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            raise serializers.ValidationError("`input` must be a non-empty string or list of strings.")
        if len(items) > 512:
            raise serializers.ValidationError("At most 512 inputs per request.")
        return items


@extend_schema(tags=["OpenAI-compatible"], request=EmbeddingsRequest)
class EmbeddingsApi(OpenAIView):
    """POST /v1/embeddings: the bundled all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised)."""

    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "inference"

    @extend_schema(
        request=EmbeddingsRequest,
        responses={200: OpenApiResponse(description="OpenAI list of embedding objects with usage")},
    )
    def post(self, request):
        body = EmbeddingsRequest(data=request.data)
        body.is_valid(raise_exception=True)
        model = body.validated_data["model"]
        if model != embeddings.MODEL_NAME:
            raise ModelNotFound(model, "embedding model")
        texts = body.validated_data["input"]
        vectors = embeddings.embed(texts)
        tokens = embeddings.token_count(texts)
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return Response({"object": "list", "data": data, "model": model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})  # fmt: skip
