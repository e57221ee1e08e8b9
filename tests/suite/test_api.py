import re

import pytest

from accounts.roles import Role
from tests.factories import api_key


@pytest.mark.django_db
def test_token_authentication_and_me(client, make_user):
    user = make_user(Role.RADIOLOGIST, department="radiology", certifications=["board_certified"])
    response = client.get("/api/me/", HTTP_AUTHORIZATION=f"Token {api_key(user)}")
    assert response.status_code == 200
    assert response.json() == {
        "username": user.username,
        "full_name": user.get_full_name(),
        "roles": ["radiologist"],
        "department": "radiology",
        "site": "",
        "certifications": ["board_certified"],
    }


@pytest.mark.django_db
def test_api_requires_authentication(client):
    assert client.get("/api/me/").status_code in (401, 403)
    assert client.get("/api/me/", HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


@pytest.mark.django_db
def test_openapi_schema_and_offline_docs(client, make_user):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert "/api/me/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert not url.startswith(("http://", "https://", "//")), f"docs page loads {url} from the network"
    asset = re.search(r'src="([^"]+swagger-ui-bundle[^"]*)"', html).group(1)
    assert client.get(asset).status_code == 200
