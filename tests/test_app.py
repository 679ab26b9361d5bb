"""The app skeleton: lifespan, health, security headers, errors as HTML or JSON."""

from __future__ import annotations

import dataclasses

from starlette.testclient import TestClient

from archive.config import Settings
from archive.storage import ObjectStore
from archive.web.app import create_app
from tests.servers import wait_until


def test_healthz_answers_when_storage_does(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_is_503_when_storage_is_gone(client: TestClient, store) -> None:
    store._client.delete_bucket(Bucket=store.bucket)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "does not exist" in response.json()["reason"]


def test_unknown_pages_are_friendly_404s(client: TestClient) -> None:
    page = client.get("/no/such/page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "There is nothing at this address." in page.text
    assert page.headers["content-type"].startswith("text/html")
    api = client.get("/api/nothing")
    assert api.status_code == 404
    assert api.json()["error"]


def test_security_headers_on_every_response(client: TestClient) -> None:
    for path in ("/healthz", "/nowhere", "/static/site.css"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "unsafe-inline" not in headers["content-security-policy"]
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"]


def test_app_refuses_to_start_against_a_missing_bucket(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, s3_bucket="never-created-bucket"))
    try:
        with TestClient(app):
            raise AssertionError("started without a bucket")
    except Exception as error:
        assert "does not exist" in str(error)



def test_an_empty_archive_fills_with_the_demo_while_serving(settings: Settings,
                                                            store: ObjectStore) -> None:
    """What `make run` does on a new laptop: the site answers at once, the demo arrives."""
    with TestClient(create_app(settings, demo_if_empty=True), base_url=settings.base_url) as app:
        assert app.get("/healthz").status_code == 200
        assert wait_until(lambda: app.get("/healthz").json()["episodes"] == 7, timeout=120)
        assert "Trusting Enemies: Inaugural Lecture" in app.get("/").text
