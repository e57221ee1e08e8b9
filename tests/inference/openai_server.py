"""A minimal OpenAI-compatible HTTP server around LocalEngine, for RemoteEngine tests.

Run as a separate process: `python openai_server.py --model-dir DIR [--api-key KEY]`; it prints
`PORT <n>` once it listens on 127.0.0.1. It speaks the parts of the protocol RemoteEngine uses:
GET /v1/models, POST /v1/chat/completions and /v1/completions, with and without SSE streaming,
and answers errors the way vLLM does (context length 400, unknown model 404, bad key 401).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from inference.engine.local import LocalEngine
from inference.engine.types import ContextLengthExceeded, EngineError, GenerationParams, GenerationResult


def make_handler(engine: LocalEngine, model_name: str, api_key: str | None):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep test output clean
            pass

        def do_GET(self):
            if not self._authorized():
                return
            if self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._error(404, f"No route {self.path}")

        def do_POST(self):
            if not self._authorized():
                return
            if self.path not in ("/v1/chat/completions", "/v1/completions"):
                self._error(404, f"No route {self.path}")
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            if body.get("model") != model_name:
                self._error(404, f"The model `{body.get('model')}` does not exist.")
                return
            chat = self.path == "/v1/chat/completions"
            prompt = body["messages"] if chat else body["prompt"]
            params = GenerationParams(
                max_tokens=body.get("max_tokens", 16),
                temperature=body.get("temperature", 1.0),
                top_p=body.get("top_p", 1.0),
                top_k=body.get("top_k", 0),
                seed=body.get("seed"),
                stop=[body["stop"]] if isinstance(body.get("stop"), str) else body.get("stop") or [],
            )
            try:
                if body.get("stream"):
                    self._stream(engine.stream(prompt, params), chat)
                else:
                    result = engine.generate(prompt, params)
                    self._json(200, self._completion(result, chat))
            except ContextLengthExceeded as exc:
                self._error(
                    400,
                    f"This model's maximum context length is {exc.limit} tokens. However, you requested "
                    f"{exc.got + params.max_tokens} tokens ({exc.got} in the messages, {params.max_tokens} in "
                    "the completion). Please reduce the length of the messages or completion.",
                )
            except EngineError as exc:
                self._error(400, str(exc))

        def _stream(self, items, chat: bool):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            identifier = f"cmpl-{uuid.uuid4().hex}"
            for item in items:
                if isinstance(item, GenerationResult):
                    final = {"finish_reason": item.finish_reason, "index": 0}
                    final.update({"delta": {}} if chat else {"text": ""})
                    self._event({"id": identifier, "choices": [final]})
                    self._event({"id": identifier, "choices": [], "usage": self._usage(item)})
                else:
                    choice = {"index": 0, "finish_reason": None}
                    choice.update({"delta": {"content": item}} if chat else {"text": item})
                    self._event({"id": identifier, "choices": [choice]})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

        def _event(self, payload: dict):
            # A keep-alive comment first, as some servers send them, to exercise the client's parser.
            self.wfile.write(b": ping\n\ndata: " + json.dumps(payload).encode() + b"\n\n")
            self.wfile.flush()

        @staticmethod
        def _usage(result: GenerationResult) -> dict:
            return {
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "total_tokens": result.prompt_tokens + result.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": result.cached_prompt_tokens},
            }

        def _completion(self, result: GenerationResult, chat: bool) -> dict:
            choice = {"index": 0, "finish_reason": result.finish_reason}
            if chat:
                choice["message"] = {"role": "assistant", "content": result.text}
            else:
                choice["text"] = result.text
            return {
                "id": f"cmpl-{uuid.uuid4().hex}",
                "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()),
                "model": model_name,
                "choices": [choice],
                "usage": self._usage(result),
            }

        def _authorized(self) -> bool:
            if api_key is None or self.headers.get("Authorization") == f"Bearer {api_key}":
                return True
            self._error(401, "Incorrect API key provided.")
            return False

        def _error(self, status: int, message: str):
            self._json(
                status, {"error": {"message": message, "type": "invalid_request_error", "code": status}}
            )

        def _json(self, status: int, payload: dict):
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--model-name", default="suite-test")
    parser.add_argument("--api-key")
    args = parser.parse_args()
    engine = LocalEngine(args.model_dir)
    engine.loaded()  # load before announcing the port, so the first request is not a cold start
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(engine, args.model_name, args.api_key))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
