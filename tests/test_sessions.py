"""Sessions end on the server: sign-out, sign-out everywhere, password changes, removal.

A session cookie is signed, so only the server can end it: each editor's live session ids are
kept (hashed) in `auth/users.json`, and a cookie whose id is not there any more is refused,
whoever holds a copy of it.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from archive.auth import Auth
from archive.config import Settings
from archive.storage import ObjectStore
from tests.cli import run_cli
from tests.test_auth import PASSWORD, add_editor, csrf_of, sign_in

NEW_PASSWORD = "a brand new passphrase"
COOKIE = "archive_session"


def captured(client: TestClient) -> str:
    """What an attacker who copied the browser's cookie holds."""
    value = client.cookies.get(COOKIE)
    assert value
    return value


def replay(make_client: object, cookie: str) -> TestClient:
    """A second browser (its own app instance, like another process) presenting `cookie`."""
    other: TestClient = make_client()  # type: ignore[operator]
    other.cookies.set(COOKIE, cookie)
    return other


def signed_in(client: TestClient) -> bool:
    return client.get("/upload", follow_redirects=False).status_code == 200


def test_a_cookie_copied_before_sign_out_no_longer_works(store: ObjectStore, client: TestClient,
                                                          make_client: object) -> None:
    add_editor(store)
    csrf = sign_in(client)
    stolen = captured(client)
    out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert not signed_in(client)
    thief = replay(make_client, stolen)
    assert not signed_in(thief)
    # Not for changes either, even with the session's own CSRF token.
    thief.cookies.set(COOKIE, stolen)
    change = thief.post("/logout/everywhere", data={"csrf": csrf}, follow_redirects=False)
    assert change.status_code == 401


def test_sign_out_ends_only_that_session(store: ObjectStore, client: TestClient,
                                         make_client: object) -> None:
    add_editor(store)
    laptop_csrf = sign_in(client)
    phone: TestClient = make_client()  # type: ignore[operator]
    sign_in(phone)
    client.post("/logout", data={"csrf": laptop_csrf})
    assert not signed_in(client)
    assert signed_in(phone)


def test_sign_out_everywhere_is_a_button_on_every_editor_page(store: ObjectStore,
                                                              client: TestClient,
                                                              make_client: object) -> None:
    add_editor(store)
    csrf = sign_in(client)
    phone: TestClient = make_client()  # type: ignore[operator]
    sign_in(phone)
    stolen = captured(phone)
    for path in ("/upload", "/edit", "/audit", "/account"):
        page = client.get(path)
        assert page.status_code == 200, path
        form = re.search(r'<form method="post" action="/logout/everywhere"[^>]*>(.*?)</form>',
                         page.text, re.S)
        assert form, path
        assert f'name="csrf" value="{csrf}"' in form.group(1)
        assert re.search(r"<button[^>]*>Sign out everywhere</button>", form.group(1))
    # Without the CSRF token (a forged form), nothing ends.
    forged = client.post("/logout/everywhere", data={"csrf": "forged"},
                         follow_redirects=False)
    assert forged.status_code == 403
    assert signed_in(phone)
    done = client.post("/logout/everywhere", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert not signed_in(client) and not signed_in(phone)
    assert not signed_in(replay(make_client, stolen))
    # Signing in again works, and makes a new session.
    sign_in(client)
    assert signed_in(client)


def test_a_password_change_on_the_command_line_ends_every_session(
        settings: Settings, store: ObjectStore, client: TestClient, make_client: object) -> None:
    add_editor(store)
    add_editor(store, "colleague")
    sign_in(client)
    stolen = captured(client)
    colleague: TestClient = make_client()  # type: ignore[operator]
    sign_in(colleague, "colleague")
    changed = run_cli(settings, "user", "password", "editor",
                      stdin=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert changed.returncode == 0, changed.stderr
    assert not signed_in(client)
    assert not signed_in(replay(make_client, stolen))
    assert signed_in(colleague)  # another editor's sessions are theirs
    sign_in(client, password=NEW_PASSWORD)
    assert signed_in(client)


def test_a_password_change_on_the_web_ends_the_other_sessions(
        store: ObjectStore, client: TestClient, make_client: object) -> None:
    add_editor(store)
    csrf = sign_in(client)
    before = captured(client)
    phone: TestClient = make_client()  # type: ignore[operator]
    sign_in(phone)
    page = client.get("/account")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    for label in ("Current password", "New password", "New password (again)"):
        assert f">{label}</label>" in page.text, label
    fields = {"csrf": csrf, "current_password": PASSWORD, "new_password": NEW_PASSWORD,
              "new_password_again": NEW_PASSWORD}

    wrong = client.post("/account/password", data={**fields, "current_password": "not it!"})
    assert wrong.status_code == 401 and "Wrong password" in wrong.text
    differ = client.post("/account/password", data={**fields, "new_password_again": "x" * 12})
    assert differ.status_code == 422 and "differ" in differ.text
    short = client.post("/account/password", data={**fields, "new_password": "short",
                                                    "new_password_again": "short"})
    assert short.status_code == 422
    assert client.post("/account/password", data={**fields, "csrf": "forged"}).status_code == 403
    assert signed_in(phone)  # nothing changed yet

    changed = client.post("/account/password", data=fields, follow_redirects=False)
    assert changed.status_code == 303 and changed.headers["location"] == "/account?saved=password"
    assert signed_in(client)  # this browser carries on with a new session…
    assert captured(client) != before
    assert not signed_in(phone)  # …every other one ends
    assert not signed_in(replay(make_client, before))
    assert Auth(store, ttl=0).verify_password("editor", NEW_PASSWORD) == "editor"
    assert Auth(store, ttl=0).verify_password("editor", PASSWORD) is None
    assert "user.password" in client.get("/audit").text


def test_removing_and_re_adding_an_editor_does_not_revive_old_sessions(
        store: ObjectStore, client: TestClient, make_client: object) -> None:
    add_editor(store)
    sign_in(client)
    stolen = captured(client)
    auth = Auth(store, ttl=0)
    auth.remove_user("editor")
    auth.add_user("editor", PASSWORD)
    assert not signed_in(replay(make_client, stolen))


def test_a_rehash_at_sign_in_keeps_the_editors_other_sessions(store: ObjectStore) -> None:
    """Raising the Argon2 parameters upgrades a hash at the next sign-in; that is no password
    change, so the editor's other devices stay signed in."""
    old = Auth(store, ttl=0, hasher=PasswordHasher(time_cost=1, memory_cost=8192))
    old.add_user("editor", PASSWORD)
    sid = old.start_session("editor")
    new = Auth(store, ttl=0, hasher=PasswordHasher(time_cost=2, memory_cost=8192))
    assert new.verify_password("editor", PASSWORD) == "editor"
    assert new.users.read(fresh=True)["users"]["editor"]["hash"].startswith(
        "$argon2id$v=19$m=8192,t=2")
    assert new.session_alive("editor", sid, fresh=True)


def test_session_ids_are_stored_only_hashed_and_bounded(store: ObjectStore) -> None:
    auth = Auth(store, ttl=0)
    auth.add_user("editor", PASSWORD)
    sids = [auth.start_session("editor") for _ in range(25)]
    raw = store.get_bytes("auth/users.json")[0].decode()  # type: ignore[index]
    assert not any(sid in raw for sid in sids)
    alive = [auth.session_alive("editor", sid, fresh=True) for sid in sids]
    assert alive[-20:] == [True] * 20 and not any(alive[:5])  # the oldest end first
    assert not auth.session_alive("nobody", sids[-1])
    assert not auth.session_alive("editor", "")


@pytest.mark.parametrize("path", ["/logout", "/logout/everywhere", "/account/password"])
def test_session_changes_refuse_cross_site_posts(store: ObjectStore, client: TestClient,
                                                 path: str) -> None:
    add_editor(store)
    csrf = sign_in(client)
    hostile = client.post(path, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "cross-site"},
                          follow_redirects=False)
    assert hostile.status_code == 403
    assert signed_in(client)


def test_sign_out_works_without_a_session(client: TestClient) -> None:
    csrf = csrf_of(client, "/login")
    out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
