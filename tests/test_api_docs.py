"""The OpenAPI document is generated from the code and browsable without any CDN."""

import re

import pytest
from django.contrib.staticfiles import finders

from credentials.models import MANAGEMENT_CLIENT_ID, App


def test_the_document_is_served_and_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/api/v1/credentials/{credential_id}/rotations" in document["paths"]
    assert document["components"]["securitySchemes"]["ManagementKey"]["scheme"] == "bearer"
    rotation = document["paths"]["/api/v1/credentials/{credential_id}/rotations"]["post"]
    headers = [p["name"] for p in rotation["parameters"] if p["in"] == "header"]
    assert headers == ["Idempotency-Key"]
    assert "application/problem+json" in rotation["responses"]["403"]["content"]
    assert "/api/v1/introspect" not in document["paths"]  # outside the framework, as before


def test_the_docs_page_loads_every_asset_from_our_own_static_files(client):
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    html = response.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources
    for source in sources:
        assert source.startswith("/static/"), source
        assert finders.find(source.removeprefix("/static/")), source
    assert "cdn" not in html.lower()


@pytest.mark.django_db
def test_the_management_app_exists_after_migrating(client):
    app = App.objects.get(client_id=MANAGEMENT_CLIENT_ID)
    assert app.name == "Keyturn automation API"
    assert app.archived_at is None
