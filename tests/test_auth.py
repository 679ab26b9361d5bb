"""Editors, sign-in, sessions, CSRF, cross-site refusal, API tokens, throttling.

Also the helpers the other editor tests import (`add_editor`, `sign_in`, `csrf_of`, `token_for`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from archive.auth import Auth
from archive.config import Settings
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.conftest import bucket_listing
from tests.factories import make_episode

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


# -- helpers shared by the editor tests ------------------------------------------------------------


def add_editor(store: ObjectStore, name: str = "editor", password: str = PASSWORD) -> str:
    return Auth(store, ttl=0).add_user(name, password)


def token_for(store: ObjectStore, name: str = "editor") -> str:
    auth = Auth(store, ttl=0)
    if not auth.exists(name):
        auth.add_user(name, PASSWORD)
    return auth.create_token(name)[1]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def csrf_of(client: TestClient, path: str = "/upload") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = _CSRF.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client: TestClient, name: str = "editor", password: str = PASSWORD) -> str:
    """Sign in through the form; returns the CSRF token of the new session."""
    token = csrf_of(client, "/login")
    response = client.post("/login", data={"username": name, "password": password,
                                           "csrf": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return csrf_of(client, "/upload")


def seed_episode(store: ObjectStore, catalog: object, **fields: object) -> str:
    """A catalogued episode with a real stored delivery file, without running an ingest."""
    episode = make_episode(**fields)
    data = b"ID3 fake audio"
    store.put_bytes(episode.files["audio"].key, data, "audio/mpeg")

    def apply(doc: object) -> None:
        from archive.models import Series

        doc.series.setdefault("roundtables", Series.new("Roundtables"))  # type: ignore[attr-defined]
        doc.episodes[episode.id] = episode  # type: ignore[attr-defined]

    catalog.change(apply)  # type: ignore[attr-defined]
    return episode.id


# -- the command line ------------------------------------------------------------------------------


def test_cli_adds_lists_and_removes_editors(settings: Settings, store: ObjectStore) -> None:
    added = run_cli(settings, "user", "add", "Alice", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    listed = run_cli(settings, "user", "list")
    assert listed.stdout.split() == ["alice"]
    users = store.get_json("auth/users.json")[0]["users"]
    assert users["alice"]["hash"].startswith("$argon2id$")
    assert PASSWORD not in store.get_bytes("auth/users.json")[0].decode()  # type: ignore[index]

    differ = run_cli(settings, "user", "add", "bob", stdin=f"{PASSWORD}\nsomething else\n")
    assert differ.returncode == 1 and "differ" in differ.stderr
    twice = run_cli(settings, "user", "add", "alice", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert twice.returncode == 1 and "already" in twice.stderr
    short = run_cli(settings, "user", "add", "carol", stdin="short\nshort\n")
    assert short.returncode == 1 and "at least" in short.stderr

    removed = run_cli(settings, "user", "remove", "alice")
    assert removed.returncode == 0, removed.stderr
    assert run_cli(settings, "user", "list").stdout.split() == []


def test_token_is_shown_once_stored_hashed_and_revocable(settings: Settings, store: ObjectStore,
                                                         client: TestClient) -> None:
    run_cli(settings, "user", "add", "alice", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    created = run_cli(settings, "token", "create", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("arch_") and len(token) > 40
    stored = store.get_bytes("auth/tokens.json")[0].decode()  # type: ignore[index]
    assert token not in stored
    listing = run_cli(settings, "token", "list")
    assert "alice" in listing.stdout and token not in listing.stdout
    token_id = listing.stdout.split()[0]

    seeded = seed_episode(store, client.app.state.archive.catalog)  # type: ignore[attr-defined]
    patch = client.patch(f"/api/episodes/{seeded}", json={"tags": ["trust"]},
                         headers=bearer(token))
    assert patch.status_code == 200, patch.text

    revoked = run_cli(settings, "token", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    before = bucket_listing(store)
    again = client.patch(f"/api/episodes/{seeded}", json={"tags": ["other"]},
                         headers=bearer(token))
    assert again.status_code == 401
    assert again.json()["error"] and again.headers["www-authenticate"].startswith("Bearer")
    assert client.delete(f"/api/episodes/{seeded}", headers=bearer(token)).status_code == 401
    assert bucket_listing(store) == before


def test_token_for_an_unknown_editor_is_refused(settings: Settings, store: ObjectStore) -> None:
    result = run_cli(settings, "token", "create", "nobody")
    assert result.returncode == 1 and "no editor" in result.stderr


def test_removing_an_editor_ends_their_tokens_and_sessions(store: ObjectStore,
                                                           client: TestClient) -> None:
    token = token_for(store, "alice")
    sign_in(client, "alice")
    Auth(store, ttl=0).remove_user("alice")
    seeded = seed_episode(store, client.app.state.archive.catalog)  # type: ignore[attr-defined]
    assert client.delete(f"/api/episodes/{seeded}", headers=bearer(token)).status_code == 401
    page = client.get("/upload", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


# -- signing in ------------------------------------------------------------------------------------


def test_login_form_has_labelled_username_and_password(client: TestClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert re.search(r'<label for="username">Username</label>', page.text)
    assert re.search(r'<label for="password">Password</label>', page.text)
    assert 'name="username"' in page.text and 'name="password"' in page.text
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


def test_sign_in_sets_a_hardened_renewed_session(store: ObjectStore, client: TestClient) -> None:
    add_editor(store)
    before_token = csrf_of(client, "/login")
    before_cookie = client.cookies.get("archive_session")
    response = client.post("/login", data={"username": "Editor", "password": PASSWORD,
                                           "csrf": before_token, "next": "/edit"},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/edit"
    set_cookie = response.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie  # http base URL
    assert client.cookies.get("archive_session") != before_cookie
    assert csrf_of(client, "/upload") != before_token  # a new session, a new CSRF token


def test_https_base_url_gives_secure_host_cookies(make_client: object) -> None:
    client = make_client(base_url="https://archive.test")  # type: ignore[operator]
    response = client.get("/login")
    set_cookie = response.headers["set-cookie"]
    assert set_cookie.startswith("__Host-archive_session=")
    assert "Secure" in set_cookie and "HttpOnly" in set_cookie and "Path=/" in set_cookie


def test_public_pages_never_set_cookies_for_signed_in_editors(store: ObjectStore,
                                                              client: TestClient) -> None:
    add_editor(store)
    sign_in(client)
    for path in ("/feed.xml", "/api/episodes", "/healthz"):
        assert "set-cookie" not in client.get(path).headers, path


def test_wrong_passwords_get_one_generic_answer(store: ObjectStore, client: TestClient) -> None:
    add_editor(store)
    answers = []
    for name in ("editor", "nobody"):
        response = client.post("/login", data={"username": name, "password": "wrong password",
                                               "csrf": csrf_of(client, "/login")})
        answers.append((response.status_code, re.search(r'role="alert">([^<]+)<',
                                                        response.text).group(1)))
    assert answers[0] == answers[1] == (401, "Wrong username or password.")


def test_open_redirects_after_sign_in_are_refused(store: ObjectStore, client: TestClient) -> None:
    add_editor(store)
    response = client.post("/login", data={
        "username": "editor", "password": PASSWORD, "csrf": csrf_of(client, "/login"),
        "next": "//evil.example/"}, follow_redirects=False)
    assert response.headers["location"] == "/upload"


def test_25_wrong_passwords_are_throttled_without_errors(store: ObjectStore,
                                                         client: TestClient) -> None:
    add_editor(store)
    statuses = []
    for _ in range(25):
        response = client.post("/login", data={"username": "editor", "password": "guess"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
            assert "Too many failed sign-ins" in response.text
    assert 500 not in statuses
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    # Even the right password waits: guessing cannot continue by luck.
    right = client.post("/login", data={"username": "editor", "password": PASSWORD})
    assert right.status_code == 429
    # An unknown name is throttled just the same (nothing tells which names exist).
    unknown = [client.post("/login", data={"username": "ghost", "password": "x" * 9}).status_code
               for _ in range(6)]
    assert unknown[-1] == 429


def test_throttling_per_address_covers_many_accounts(store: ObjectStore,
                                                     client: TestClient) -> None:
    statuses = [client.post("/login", data={"username": f"user{n}", "password": "guess-guess"}
                            ).status_code for n in range(22)]
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429


# -- refusing what does not come from an editor ----------------------------------------------------


STATE_CHANGING = [
    ("post", "/upload"), ("post", "/logout"), ("post", "/edit/{id}"),
    ("post", "/edit/{id}/files"), ("post", "/edit/{id}/publish"), ("post", "/edit/{id}/delete"),
    ("post", "/api/episodes"), ("patch", "/api/episodes/{id}"), ("delete", "/api/episodes/{id}"),
]


def _attempt(client: TestClient, method: str, path: str, recording: Path,
             headers: dict[str, str] | None = None, csrf: str | None = None) -> int:
    data = {"title": "Hijacked", "series": "Roundtables", "action": "unpublish",
            "revision": ""}
    if csrf is not None:
        data["csrf"] = csrf
    if method == "patch":
        return client.patch(path, json={"title": "Hijacked"}, headers=headers).status_code
    if method == "delete":
        return client.delete(path, headers=headers).status_code
    if path.endswith(("/upload", "/files", "/api/episodes")):
        with recording.open("rb") as stream:
            return client.post(path, data=data, files={"file": ("talk.wav", stream)},
                               headers=headers, follow_redirects=False).status_code
    return client.post(path, data=data, headers=headers, follow_redirects=False).status_code


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)


def test_every_state_changing_route_needs_an_editor(store: ObjectStore, client: TestClient,
                                                    recording: Path) -> None:
    episode_id = seed_episode(store, client.app.state.archive.catalog)  # type: ignore[attr-defined]
    before = bucket_listing(store)
    for method, path in STATE_CHANGING:
        status = _attempt(client, method, path.format(id=episode_id), recording)
        assert status in (401, 403), (method, path, status)
    wrong = bearer("arch_" + "x" * 43)
    for method, path in STATE_CHANGING:
        if path.startswith("/api/"):
            status = _attempt(client, method, path.format(id=episode_id), recording, wrong)
            assert status == 401, (method, path, status)
    assert bucket_listing(store) == before


def test_forms_without_the_right_csrf_token_are_refused(store: ObjectStore, client: TestClient,
                                                        recording: Path) -> None:
    episode_id = seed_episode(store, client.app.state.archive.catalog)  # type: ignore[attr-defined]
    add_editor(store)
    sign_in(client)
    before = bucket_listing(store)
    for method, path in STATE_CHANGING:
        if path.startswith("/api/"):
            continue
        for token in (None, "wrong-token"):
            status = _attempt(client, method, path.format(id=episode_id), recording, csrf=token)
            assert status == 403, (path, token, status)
    assert bucket_listing(store) == before
    assert client.get("/upload", follow_redirects=False).status_code == 200  # still signed in


def test_cross_site_requests_are_refused_even_with_a_valid_token(
        store: ObjectStore, client: TestClient, recording: Path) -> None:
    episode_id = seed_episode(store, client.app.state.archive.catalog)  # type: ignore[attr-defined]
    add_editor(store)
    csrf = sign_in(client)
    api_token = token_for(store, "editor")
    before = bucket_listing(store)
    hostile = [{"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
               {"Origin": "https://evil.example"}, {"Origin": "null"}]
    for headers in hostile:
        for method, path in STATE_CHANGING:
            auth = {**headers, **bearer(api_token)} if path.startswith("/api/") else headers
            status = _attempt(client, method, path.format(id=episode_id), recording, auth, csrf)
            assert status == 403, (headers, path, status)
        login = client.post("/login", data={"username": "editor", "password": PASSWORD},
                            headers=headers)
        assert login.status_code == 403
    assert bucket_listing(store) == before
    same = client.post(f"/edit/{episode_id}/publish", data={"csrf": csrf, "action": "unpublish"},
                       headers={"Origin": "http://archive.test",
                                "Sec-Fetch-Site": "same-origin"}, follow_redirects=False)
    assert same.status_code == 303


def test_editor_pages_send_strangers_to_sign_in(client: TestClient) -> None:
    for path in ("/upload", "/edit", "/audit", "/edit/abcdef123456", "/upload/jobs/x" * 1):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=")


def test_a_login_form_with_a_wrong_csrf_token_is_refused(store: ObjectStore,
                                                         client: TestClient) -> None:
    add_editor(store)
    csrf_of(client, "/login")
    response = client.post("/login", data={"username": "editor", "password": PASSWORD,
                                           "csrf": "forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert client.get("/upload", follow_redirects=False).status_code == 303


# Parallel guesses, back-off and shared counters: tests/test_signin.py.
