"""RemoteEngine against a real OpenAI-compatible server process (and canned replies for overload)."""

import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from inference.engine.remote import RemoteEngine
from inference.engine.types import (
    ContextLengthExceeded,
    GenerationParams,
    GenerationResult,
    Overloaded,
    RemoteAuthError,
    RemoteEngineError,
    RemoteUnavailable,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-123"


@pytest.fixture(scope="module")
def server_url(demo_models):
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("openai_server.py")), "--model-dir", demo_models["target_dir"],
         "--api-key", API_KEY],
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT "), "the test server did not start"
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def remote(server_url):
    return RemoteEngine(server_url, "suite-test", api_key=API_KEY, timeout=120)


@pytest.mark.parametrize("use_chat", [True, False])
def test_generate_matches_the_local_engine(remote, engine, record_prompts, use_chat):
    prompt = record_prompts[1] if use_chat else "Work order summary. The equipment is"
    params = GenerationParams(max_tokens=20)
    local = engine.generate(prompt, params)
    answer = remote.generate(prompt, params)
    assert answer.text == local.text
    assert (answer.prompt_tokens, answer.completion_tokens) == (local.prompt_tokens, local.completion_tokens)
    assert answer.finish_reason == local.finish_reason
    assert answer.total_s > 0


@pytest.mark.parametrize("use_chat", [True, False])
def test_stream_reads_server_sent_events(remote, engine, record_prompts, use_chat):
    prompt = record_prompts[5] if use_chat else "Attributes summary. The modality is"
    params = GenerationParams(max_tokens=24, stop=["."])
    local = engine.generate(prompt, params)
    items = list(remote.stream(prompt, params))
    result = items[-1]
    assert isinstance(result, GenerationResult)
    assert "".join(items[:-1]) == result.text == local.text
    assert result.completion_tokens == local.completion_tokens and result.finish_reason == local.finish_reason
    assert 0 < result.ttft_s <= result.total_s or not result.text


def test_base_url_may_include_v1(server_url):
    engine = RemoteEngine(server_url + "/v1/", "suite-test", api_key=API_KEY)
    assert engine.models() == ["suite-test"]


def test_context_length_error_is_mapped(remote, engine):
    too_long = [{"role": "user", "content": "Rows = 512 " * engine.context_length()}]
    with pytest.raises(ContextLengthExceeded) as refused:
        remote.generate(too_long, GenerationParams(max_tokens=4))
    assert refused.value.limit == engine.context_length()


def test_unknown_model_is_a_clear_error(server_url):
    engine = RemoteEngine(server_url, "no-such-model", api_key=API_KEY)
    with pytest.raises(RemoteEngineError, match="no-such-model") as refused:
        engine.generate("hello", GenerationParams(max_tokens=2))
    assert refused.value.status == 404


def test_wrong_key_is_an_auth_error(server_url):
    engine = RemoteEngine(server_url, "suite-test", api_key="wrong")
    with pytest.raises(RemoteAuthError, match="401"):
        engine.generate("hello", GenerationParams(max_tokens=2))


def test_unreachable_server_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    engine = RemoteEngine(f"http://127.0.0.1:{port}", "suite-test", timeout=5)
    with pytest.raises(RemoteUnavailable, match="Cannot reach"):
        engine.generate("hello")


class _CannedHandler(BaseHTTPRequestHandler):
    """Replies what real servers send when busy or broken; the status comes from the model name."""

    def log_message(self, format, *args):
        pass

    def do_POST(self):
        import json

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["model"] == "busy":
            self._send(429, b'{"error": {"message": "Too many requests"}}', {"Retry-After": "7"})
        elif body["model"] == "garbled":
            self._send(200, b"<html>proxy error</html>", {})
        elif body["model"] == "silent":
            threading.Event().wait(3)
            self._send(200, b"{}", {})
        else:
            self._send(500, b'{"error": {"message": "CUDA out of memory"}}', {})

    def _send(self, status, data, headers):
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def canned_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_overload_carries_the_retry_after(canned_url):
    with pytest.raises(Overloaded) as refused:
        RemoteEngine(canned_url, "busy").generate("hello")
    assert refused.value.retry_after_s == 7


def test_server_errors_and_garbage_are_engine_errors(canned_url):
    with pytest.raises(RemoteEngineError, match="CUDA out of memory") as failed:
        RemoteEngine(canned_url, "broken").generate("hello")
    assert failed.value.status == 500
    with pytest.raises(RemoteEngineError, match="not JSON"):
        RemoteEngine(canned_url, "garbled").generate("hello")


def test_a_silent_server_times_out(canned_url):
    with pytest.raises(RemoteUnavailable, match="did not answer|stopped answering"):
        RemoteEngine(canned_url, "silent", timeout=0.5).generate("hello")


def test_only_http_urls_are_accepted():
    with pytest.raises(ValueError):
        RemoteEngine("file:///etc/passwd", "x")
