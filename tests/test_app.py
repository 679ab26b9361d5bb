"""The app skeleton: lifespan, health, security headers, errors as HTML or JSON."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from archive.web.app import create_app
from archive.web.media import episode_file_path
from tests.servers import wait_until
from tests.test_web_media import publish


def test_healthz_answers_when_storage_does(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_healthz_is_503_when_storage_is_gone(client: TestClient, store: ObjectStore,
                                            caplog: pytest.LogCaptureFixture) -> None:
    store._client.delete_bucket(Bucket=store.bucket)
    with caplog.at_level(logging.WARNING, logger="archive.web"):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "reason": "storage unavailable"}
    assert store.bucket not in response.text
    assert f"{store.bucket!r} does not exist" in caplog.text  # the detail is for the operator


def unreachable(client: TestClient) -> str:
    """Point the running app at storage that does not answer (a closed port on loopback)."""
    endpoint = "http://127.0.0.1:9"
    client.app.state.archive.store = ObjectStore(  # type: ignore[attr-defined]
        endpoint, "internal-bucket", access_key="a", secret_key="b", max_attempts=1,
        connect_timeout=0.5)
    return endpoint


def test_storage_details_never_reach_the_public(catalog: Catalog, make_client: object,
                                                caplog: pytest.LogCaptureFixture) -> None:
    episode = publish(catalog, "Served while storage is down", with_sidecars=False)
    client: TestClient = make_client()  # type: ignore[operator]
    endpoint = unreachable(client)
    with caplog.at_level(logging.WARNING, logger="archive.web"):
        health = client.get("/healthz")
        media = client.get(episode_file_path(episode, "audio"),
                           headers={"Accept": "application/json"})
        page = client.get(episode_file_path(episode, "audio"), headers={"Accept": "text/html"})
    assert health.status_code == media.status_code == page.status_code == 503
    for response in (health, media, page):
        assert "127.0.0.1:9" not in response.text and "internal-bucket" not in response.text
    assert media.json()["error"] == "Storage is unavailable; please try again shortly."
    assert endpoint in caplog.text


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
