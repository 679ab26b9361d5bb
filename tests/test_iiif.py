"""IIIF Presentation 3 manifests at /episodes/{slug}/manifest.json, loaded by iiif-prezi3's
models (the IIIF community's own Python implementation) and checked field by field."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from iiif_prezi3 import Manifest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.models import Episode, Person, Series
from tests.test_oai import amend
from tests.test_web_media import WHEELER, publish

DUPONT = Person(name="Marie Dupont", role="lecturer", affiliation="Sciences Po",
                orcid="0000-0002-1825-0097")


@pytest.fixture
def episode(catalog: Catalog) -> Episode:
    episode = publish(catalog, 'Trust & "Deception"', speakers=[DUPONT, WHEELER])
    return amend(catalog, episode, description="Who trusts whom.", licence="cc-by-4.0",
                 consent={"marie-dupont": "withdrawn"},
                 chapters=[{"start": 0, "title": "Welcome"},
                           {"start": 1.25, "title": "Discussion"}])


@pytest.fixture
def app(episode: Episode, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def fetch(app: TestClient, episode: Episode) -> dict[str, Any]:
    response = app.get(f"/episodes/{episode.slug}/manifest.json",
                       headers={"origin": "https://viewer.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"].startswith("application/ld+json")
    return response.json()  # type: ignore[no-any-return]


def test_manifest_loads_in_iiif_prezi3(app: TestClient, episode: Episode) -> None:
    document = fetch(app, episode)
    loaded = Manifest(**document)
    assert loaded.type == "Manifest"
    assert str(loaded.id) == f"http://archive.test/episodes/{episode.slug}/manifest.json"
    canvas = loaded.items[0]
    assert canvas.duration == 2.0
    painting = canvas.items[0].items[0]
    assert painting.motivation == "painting"
    assert painting.body.type == "Sound"
    assert painting.body.format == "audio/mpeg"
    assert str(painting.body.id) == f"http://archive.test/media/{episode.id}/" \
        f"{episode.files['audio'].filename}"
    supplementing = canvas.annotations[0].items[0]
    assert supplementing.motivation == "supplementing"
    assert supplementing.body.format == "text/vtt"
    assert str(supplementing.body.id).endswith("/transcript.vtt")
    chapters = loaded.structures[0]
    assert [r.label for r in chapters.items] == [{"none": ["Welcome"]}, {"none": ["Discussion"]}]
    assert [str(r.items[0].id).rsplit("#", 1)[1] for r in chapters.items] == [
        "t=0,1.25", "t=1.25,2"]
    assert str(loaded.rights) == "https://creativecommons.org/licenses/by/4.0/"
    assert str(loaded.thumbnail[0].id).endswith("/cover.jpg")


def test_manifest_names_speakers_and_keeps_consent_private(app: TestClient,
                                                          episode: Episode) -> None:
    document = fetch(app, episode)
    speakers = [e["value"]["none"][0] for e in document["metadata"]
                if e["label"]["en"] == ["Speaker"]]
    assert speakers == [
        "Marie Dupont (lecturer, Sciences Po) https://orcid.org/0000-0002-1825-0097",
        "Nicholas J Wheeler (chair, University of Birmingham)"]
    assert document["label"] == {"en": ['Trust & "Deception"']}
    text = json.dumps(document)
    assert "withdrawn" not in text and "consent" not in text
    # The media it names are served.
    body = document["items"][0]["items"][0]["items"][0]["body"]
    assert app.head(body["id"].removeprefix("http://archive.test")).status_code == 200
    thumbnail = document["thumbnail"][0]["id"].removeprefix("http://archive.test")
    assert app.get(thumbnail).headers["content-type"] == "image/jpeg"


def test_video_canvas_has_size(catalog: Catalog, make_client: Callable[..., TestClient]
                               ) -> None:
    episode = publish(catalog, "Filmed lecture", series=Series.new("Lectures"),
                      with_sidecars=False)
    files = {role: f.to_dict() for role, f in episode.files.items()}
    files["video"] = {**files["audio"], "content_type": "video/mp4", "width": 640,
                      "height": 360}
    episode = amend(catalog, episode, files=files)
    document = fetch(make_client(), episode)
    loaded = Manifest(**document)
    canvas = loaded.items[0]
    assert (canvas.width, canvas.height) == (640, 360)
    assert canvas.items[0].items[0].body.type == "Video"
    assert "annotations" not in document["items"][0]  # no transcript, no supplementing page
    assert "structures" not in document and "rights" in document  # the site's licence


def test_drafts_and_unknown_episodes_have_no_manifest(catalog: Catalog,
                                                      make_client: Callable[..., TestClient]
                                                      ) -> None:
    draft = publish(catalog, "Unfinished", draft=True)
    app = make_client()
    assert app.get(f"/episodes/{draft.slug}/manifest.json").status_code == 404
    assert app.get("/episodes/nothing-here/manifest.json").status_code == 404


def test_preflight_and_revalidation(app: TestClient, episode: Episode) -> None:
    path = f"/episodes/{episode.slug}/manifest.json"
    preflight = app.options(path, headers={"origin": "https://viewer.example",
                                           "access-control-request-method": "GET"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    etag = app.get(path).headers["etag"]
    again = app.get(path, headers={"if-none-match": etag})
    assert again.status_code == 304
    assert again.headers["access-control-allow-origin"] == "*"


def test_episode_page_links_to_its_manifest(app: TestClient, episode: Episode) -> None:
    page = app.get(f"/episodes/{episode.slug}").text
    assert f'href="/episodes/{episode.slug}/manifest.json"' in page
