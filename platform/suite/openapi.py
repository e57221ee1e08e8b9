"""OpenAPI schema post-processing: the error responses every operation can give, documented once.

Every API answers bad input with 400, a missing or unreadable record with 404 (also what a record
the caller may not see answers, so nobody learns it exists), an anonymous call with 401, a policy
refusal with 403 and a throttled one with 429 (with Retry-After); writes can also meet 409
(conflicting state), 413 (too large), 415 (wrong media type) and 503 with Retry-After (the task queue
they need is down; ops.broker). The bodies are DRF's: `{"detail": "..."}` or `{"field": ["message",
...]}`. Declaring them here, not per view, keeps the schema honest
for clients and for schemathesis, which fails any undocumented status code.
"""

from __future__ import annotations

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": 'DRF error body: {"detail": "message"} or {"field": ["message", ...]}.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
# A 400 an operation declares itself (a refusal with its own fields, a per-row report) may still be
# DRF's own body, from the parser or the input serializer, before the view runs.
DRF_BAD_REQUEST = {
    "anyOf": [
        {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
        {
            "type": "object",
            "description": 'DRF field errors: {"field": ["message", ...]} (nested for nested fields).',
            "minProperties": 1,
            "additionalProperties": {"anyOf": [{"type": "array", "items": {}}, {"type": "object"}]},
        },
    ]
}
ALWAYS = {
    "400": "The request is invalid; the body names each field and what is wrong with it.",
    "401": "Not signed in: send a session cookie or an `Authorization: Token <key>` header.",
    "403": "Signed in, but the access policy does not allow this (the reason is in `detail`).",
    "404": "No such record, or one the caller may not see.",
    "429": "Too many requests: retry after the number of seconds in the Retry-After header.",
}
WRITES = {
    "409": "The record's current state does not allow this.",
    "413": "The request body is larger than this installation accepts.",
    "415": "Unsupported media type: send the content type the operation documents.",
    "503": "The task queue this write needs is unreachable; nothing was written. Retry after Retry-After seconds.",
}


def document_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault(ERROR_SCHEMA_NAME, ERROR_SCHEMA)
    reference = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            extra = dict(ALWAYS)
            if method.lower() in ("post", "put", "patch", "delete"):
                extra.update(WRITES)
            _widen_declared_bad_request(operation["responses"].get("400"))
            _document_empty_query_values(operation)
            for code, description in extra.items():
                operation["responses"].setdefault(
                    code, {"description": description, "content": {"application/json": {"schema": reference}}}
                )
    return result


def _widen_declared_bad_request(response: dict | None) -> None:
    """A view's own 400 schema, or DRF's parse and field errors."""
    content = (response or {}).get("content", {}).get("application/json")
    if content and "schema" in content:
        content["schema"] = {"anyOf": [content["schema"], DRF_BAD_REQUEST]}


def _document_empty_query_values(operation: dict) -> None:
    """An optional query parameter sent empty (`?until=`, what a blank filter field submits) is read as
    absent by DRF's filter serializers, the pagination and the views here: the schema says so."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "query" and not parameter.get("required"):
            parameter.setdefault("allowEmptyValue", True)
