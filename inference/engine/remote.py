"""Client for any OpenAI-compatible server (vLLM, TGI, llama.cpp, Ollama), standard library only.

Same interface as LocalEngine: `generate` returns a GenerationResult, `stream` yields text deltas
then the result. Chat messages go to /v1/chat/completions, a plain prompt to /v1/completions;
streaming reads server-sent events. Server failures become the engine's own exceptions.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import time
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

from inference.engine.types import (
    ChatMessage,
    ContextLengthExceeded,
    GenerationParams,
    GenerationResult,
    Overloaded,
    RemoteAuthError,
    RemoteEngineError,
    RemoteUnavailable,
)

Prompt = str | Sequence[ChatMessage | dict]

# How servers phrase "prompt too long": (limit, requested) from OpenAI/vLLM and TGI messages.
CONTEXT_LENGTH_PATTERNS = (
    re.compile(r"maximum context length is (\d+) tokens.*?(?:requested|resulted in) (\d+) tokens", re.S),
    re.compile(r"must be <= (\d+)\. Given: (\d+)", re.S),
)


class RemoteEngine:
    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout: float = 120.0):
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL.")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key = api_key
        self.timeout = timeout
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        # Accept both "http://host:8000" and "http://host:8000/v1".
        path = parts.path.rstrip("/")
        self._prefix = path if path.endswith("/v1") else f"{path}/v1"

    # -- public API -------------------------------------------------------------------------

    def generate(
        self,
        messages_or_prompt: Prompt,
        params: GenerationParams | None = None,
        session_id: str | None = None,
    ) -> GenerationResult:
        params = params or GenerationParams()
        started = time.perf_counter()
        endpoint, payload = self._request_body(messages_or_prompt, params, stream=False)
        with self._open(endpoint, payload) as response:
            body = _read_json(response)
        choice = _first_choice(body)
        text = (choice.get("message") or {}).get("content") or choice.get("text") or ""
        total = time.perf_counter() - started
        return _result(text, body.get("usage") or {}, choice.get("finish_reason"), ttft=total, total=total)

    def stream(
        self,
        messages_or_prompt: Prompt,
        params: GenerationParams | None = None,
        session_id: str | None = None,
    ) -> Iterator[str | GenerationResult]:
        params = params or GenerationParams()
        started = time.perf_counter()
        endpoint, payload = self._request_body(messages_or_prompt, params, stream=True)
        pieces: list[str] = []
        usage: dict = {}
        finish_reason = None
        ttft = None
        with self._open(endpoint, payload) as response:
            for event in _server_sent_events(response):
                if event == "[DONE]":
                    break
                try:
                    chunk = json.loads(event)
                except json.JSONDecodeError as exc:
                    raise RemoteEngineError(f"The server sent an unreadable event: {event[:200]!r}") from exc
                if "error" in chunk:
                    raise _error_from_body(chunk, status=None)
                usage = chunk.get("usage") or usage
                for choice in chunk.get("choices") or []:
                    delta = (choice.get("delta") or {}).get("content") or choice.get("text") or ""
                    finish_reason = choice.get("finish_reason") or finish_reason
                    if delta:
                        ttft = ttft if ttft is not None else time.perf_counter() - started
                        pieces.append(delta)
                        yield delta
        total = time.perf_counter() - started
        yield _result(
            "".join(pieces), usage, finish_reason, ttft=ttft if ttft is not None else total, total=total
        )

    def models(self) -> list[str]:
        """Model ids the server offers (GET /v1/models)."""
        with self._open("/models", None) as response:
            body = _read_json(response)
        return [entry.get("id", "") for entry in body.get("data") or []]

    # -- internals --------------------------------------------------------------------------

    def _request_body(self, messages_or_prompt: Prompt, params: GenerationParams, *, stream: bool):
        payload: dict = {
            # vLLM serves LoRA adapters as model names of their own.
            "model": params.adapter or self.model,
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": stream,
        }
        if params.top_k:
            payload["top_k"] = params.top_k  # an extension vLLM, llama.cpp and Ollama accept
        if params.seed is not None:
            payload["seed"] = params.seed
        if params.stop:
            payload["stop"] = list(params.stop)
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if isinstance(messages_or_prompt, str):
            payload["prompt"] = messages_or_prompt
            return "/completions", payload
        payload["messages"] = [ChatMessage.coerce(m).as_dict() for m in messages_or_prompt]
        return "/chat/completions", payload

    def _open(self, endpoint: str, payload: dict | None) -> _Response:
        connection_class = (
            http.client.HTTPSConnection if self._scheme == "https" else http.client.HTTPConnection
        )
        kwargs = {"context": ssl.create_default_context()} if self._scheme == "https" else {}
        connection = connection_class(self._host, self._port, timeout=self.timeout, **kwargs)
        headers = {"Accept": "application/json, text/event-stream"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = None
        if payload is not None:
            body = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            connection.request(
                "POST" if payload is not None else "GET", self._prefix + endpoint, body, headers
            )
            response = connection.getresponse()
        except TimeoutError as exc:
            connection.close()
            raise RemoteUnavailable(f"{self.base_url} did not answer within {self.timeout:g} s.") from exc
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise RemoteUnavailable(f"Cannot reach {self.base_url}: {exc}") from exc
        if response.status >= 400:
            try:
                raw = response.read()
            finally:
                connection.close()
            raise _error_from_response(response, raw, self.base_url)
        return _Response(connection, response, self.base_url, self.timeout)


class _Response:
    """An open HTTP response that maps read failures to RemoteUnavailable and closes its connection."""

    def __init__(self, connection, response, base_url: str, timeout: float):
        self.connection = connection
        self.response = response
        self.base_url = base_url
        self.timeout = timeout

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc) -> None:
        self.connection.close()

    def read(self) -> bytes:
        return self._guard(self.response.read)

    def readline(self) -> bytes:
        return self._guard(self.response.readline)

    def _guard(self, read):
        try:
            return read()
        except TimeoutError as exc:
            raise RemoteUnavailable(f"{self.base_url} stopped answering for {self.timeout:g} s.") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteUnavailable(f"The connection to {self.base_url} broke: {exc}") from exc


def _server_sent_events(response: _Response) -> Iterator[str]:
    """The `data` payload of each server-sent event (multi-line data joined by newlines)."""
    data_lines: list[str] = []
    while True:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data_lines:
                yield "\n".join(data_lines)
                data_lines = []
            continue
        if line.startswith(":"):
            continue  # comment / keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            data_lines.append(value[1:] if value.startswith(" ") else value)
    if data_lines:
        yield "\n".join(data_lines)


def _read_json(response: _Response) -> dict:
    raw = response.read()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RemoteEngineError(f"The server answered something that is not JSON: {raw[:200]!r}") from exc
    if not isinstance(body, dict):
        raise RemoteEngineError("The server answered JSON that is not an object.")
    return body


def _first_choice(body: dict) -> dict:
    choices = body.get("choices")
    if not choices or not isinstance(choices[0], dict):
        raise RemoteEngineError("The server's answer has no choices.")
    return choices[0]


def _result(
    text: str, usage: dict, finish_reason: str | None, *, ttft: float, total: float
) -> GenerationResult:
    details = usage.get("prompt_tokens_details") or {}
    return GenerationResult(
        text=text,
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_prompt_tokens=int(details.get("cached_tokens") or 0),
        finish_reason="length" if finish_reason == "length" else "stop",
        ttft_s=ttft,
        total_s=total,
    )


def _error_from_response(response, raw: bytes, base_url: str) -> Exception:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = {"error": {"message": raw.decode("utf-8", "replace")[:500] or response.reason}}
    if response.status in (429, 503):
        retry_after = response.getheader("Retry-After")
        try:
            seconds = float(retry_after) if retry_after else 1.0
        except ValueError:
            seconds = 1.0
        return Overloaded(
            seconds, f"{base_url} is overloaded (HTTP {response.status}); retry in {seconds:g} s."
        )
    if response.status in (401, 403):
        return RemoteAuthError(
            f"{base_url} refused the credentials (HTTP {response.status}): {_message(body)}",
            status=response.status,
        )
    return _error_from_body(body if isinstance(body, dict) else {}, status=response.status)


def _error_from_body(body: dict, *, status: int | None) -> Exception:
    error = body.get("error")
    message = _message(body)
    if isinstance(error, dict) and "n_ctx" in error and "n_prompt_tokens" in error:  # llama.cpp
        return ContextLengthExceeded(limit=int(error["n_ctx"]), got=int(error["n_prompt_tokens"]))
    for pattern in CONTEXT_LENGTH_PATTERNS:
        if match := pattern.search(message):
            return ContextLengthExceeded(limit=int(match.group(1)), got=int(match.group(2)))
    prefix = f"HTTP {status}: " if status else ""
    return RemoteEngineError(f"The model server rejected the request ({prefix}{message})", status=status)


def _message(body: dict) -> str:
    error = body.get("error", body)
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)
    return str(error)
