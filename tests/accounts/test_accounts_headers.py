"""Content Security Policy and the other secure headers; no template carries inline script CSP would block."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from accounts.roles import Role

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("platform", "inference", "medical", "finance", "manufacturing")


def _directives(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_pages_carry_csp_and_secure_headers(client, make_user):
    client.force_login(make_user(Role.RADIOLOGIST, department="radiology"))
    for url in ("/login/", "/"):
        response = client.get(url, follow=url == "/")
        csp = _directives(response)
        assert csp["script-src"] == ["'self'"], url
        assert csp["object-src"] == ["'none'"] and csp["frame-ancestors"] == ["'none'"]
        assert "'unsafe-inline'" not in csp["style-src"]
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_api_docs_start_up_script_is_a_file_not_inline(client, make_user):
    client.force_login(make_user(Role.ML_ENGINEER))
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), "inline script on the docs page"
    script = re.search(r'<script src="([^"]*\?script=[^"]*)"', html).group(1).replace("&amp;", "&")
    response = client.get(script)
    assert response.status_code == 200 and b"SwaggerUIBundle" in response.content
    assert _directives(page)["script-src"] == ["'self'"]


def test_no_template_has_inline_script_or_event_handlers():
    offenders = []
    for source in SOURCE_DIRS:
        for template in (ROOT / source).rglob("templates/**/*.html"):
            text = template.read_text()
            inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", text)
            handlers = re.findall(r"\son[a-z]+\s*=", text) + re.findall(r"javascript:", text)
            if inline or handlers:
                offenders.append(f"{template.relative_to(ROOT)}: {inline + handlers}")
    assert not offenders, "move inline JS to a static file:\n" + "\n".join(offenders)
