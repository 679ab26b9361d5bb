"""Who may change things: signed session cookies, CSRF tokens, cross-site refusal, API tokens.

- Sessions are a signed (itsdangerous, `settings.secret_key`) JSON cookie, HttpOnly,
  SameSite=Lax, Secure with the `__Host-` prefix when the base URL is https, valid 12 hours
  from sign-in. Unlike Starlette's SessionMiddleware, the cookie is only sent when the session
  changed: a signed-in editor's browser must never get a Set-Cookie on a publicly cacheable
  feed or media response, where a shared cache could hand it to someone else.
- A signature only proves the server made the cookie, so the cookie's session id must also be
  live on the server (`Auth.session_alive`, in `auth/users.json`): signing out, a password change
  and "sign out everywhere" end sessions for every copy of the cookie, in every process. Editor
  pages and every change check against a fresh read; draft media within `catalog_ttl` seconds.
- Every state-changing form carries a synchronizer token kept in the session (`csrf_token`,
  `check_csrf`); requests a browser marks as coming from another site (`Sec-Fetch-Site`
  cross-site or same-site, or an `Origin` that is not ours) are refused before anything else,
  which also covers sibling hosts on a shared university domain (same-site, but not us).
- The API authenticates with `Authorization: Bearer <token>` only (never the cookie), so it
  needs no CSRF token: browsers never attach bearer tokens on their own.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from archive.auth import SESSION_LIFETIME, Auth
from archive.errors import Forbidden
from archive.jobs import JobRunner
from archive.signin import SignIn

SESSION_MAX_AGE = SESSION_LIFETIME
COOKIE_NAME = "archive_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CROSS_SITE = "This request came from another site, so it was refused."
BAD_CSRF = "This form has expired or did not come from this site; reload the page and try again."


class SessionMiddleware:
    """Pure ASGI: loads `scope["session"]` from the cookie; writes the cookie only on change."""

    def __init__(self, app: ASGIApp, secret_key: str, https_only: bool = False,
                 max_age: int = SESSION_MAX_AGE) -> None:
        self.app = app
        self.serializer = URLSafeTimedSerializer(secret_key, salt="archive.session")
        self.https_only = https_only
        self.max_age = max_age
        self.cookie = f"__Host-{COOKIE_NAME}" if https_only else COOKIE_NAME

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self._load(HTTPConnection(scope).cookies.get(self.cookie))
        scope["session"] = session
        before = _dump(session)

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and _dump(session) != before:
                headers = MutableHeaders(scope=message)
                headers.append("Set-Cookie", self._cookie_header(session))
                headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _load(self, value: str | None) -> dict[str, Any]:
        if not value:
            return {}
        try:
            data = self.serializer.loads(value, max_age=self.max_age)
        except BadSignature:
            return {}
        return data if isinstance(data, dict) else {}

    def _cookie_header(self, session: dict[str, Any]) -> str:
        secure = "; Secure" if self.https_only else ""
        if not session:
            return f"{self.cookie}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}"
        value = self.serializer.dumps(session)
        return (f"{self.cookie}={value}; Path=/; Max-Age={self.max_age}; HttpOnly; "
                f"SameSite=Lax{secure}")


def _dump(session: dict[str, Any]) -> str:
    return json.dumps(session, sort_keys=True, default=str)


# -- long-lived helpers, built once in the app's lifespan (`install`) --------------------------


def install(state: Any) -> None:
    """The editors' long-lived parts: users and tokens, sign-in throttling, upload jobs."""
    archive = state.archive
    state.auth = Auth(archive.store, ttl=archive.settings.catalog_ttl)
    state.signin = SignIn(state.auth, ttl=archive.settings.catalog_ttl)
    state.jobs = JobRunner(archive.store)


def get_auth(request: Request) -> Auth:
    return request.app.state.auth  # type: ignore[no-any-return]


def get_signin(request: Request) -> SignIn:
    return request.app.state.signin  # type: ignore[no-any-return]


def get_jobs(request: Request) -> JobRunner:
    return request.app.state.jobs  # type: ignore[no-any-return]


# -- cross-site and CSRF -----------------------------------------------------------------------


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_same_origin(request: Request) -> None:
    """Refuse what a browser says came from elsewhere. Clients that send neither header
    (curl, API scripts) pass: a cross-site attack needs a browser, and browsers send them."""
    fetch_site = request.headers.get("sec-fetch-site", "").lower()
    if fetch_site in {"cross-site", "same-site"}:
        raise Forbidden(CROSS_SITE)
    origin = request.headers.get("origin")
    if origin is None:
        return
    allowed = {origin_of(request.app.state.archive.settings.base_url),
               origin_of(str(request.base_url))}
    if origin.lower().rstrip("/") not in allowed:
        raise Forbidden(CROSS_SITE)


def csrf_token(request: Request) -> str:
    """The session's synchronizer token (created on first use)."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not (isinstance(expected, str) and expected and submitted
            and hmac.compare_digest(expected.encode(), submitted.encode())):
        raise Forbidden(BAD_CSRF)


def start_session(request: Request, user: str, sid: str) -> None:
    """Sign in with a session id from `Auth.start_session`: a new session (new id and CSRF
    token) so nothing from before carries over."""
    request.session.clear()
    request.session.update({"user": user, "sid": sid, "csrf": secrets.token_urlsafe(32)})


def end_session(request: Request) -> str | None:
    """Sign out: end the session on the server, then forget it here. Blocks on storage."""
    name, sid = request.session.get("user"), request.session.get("sid")
    if isinstance(name, str) and name and isinstance(sid, str) and sid:
        get_auth(request).end_session(name, sid)
    request.session.clear()
    return name if isinstance(name, str) and name else None


# -- who is asking -----------------------------------------------------------------------------


def session_editor(request: Request, *, fresh: bool = False) -> str | None:
    """The signed-in editor, if their session is still live on the server (not signed out, not
    ended by a password change, the editor not removed); a dead session is forgotten.
    May block on storage: call it from a worker thread."""
    name, sid = request.session.get("user"), request.session.get("sid")
    if not isinstance(name, str) or not name:
        return None
    if not (isinstance(sid, str) and get_auth(request).session_alive(name, sid, fresh=fresh)):
        request.session.clear()
        return None
    return name


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def token_editor(request: Request, *, fresh: bool = False) -> str:
    """The editor owning the request's bearer token, or 401 (with WWW-Authenticate)."""
    token = bearer_token(request)
    user = get_auth(request).user_for_token(token, fresh=fresh) if token else None
    if user is None:
        message = ("This needs an API token: send Authorization: Bearer <token>." if not token
                   else "This API token is not valid (unknown or revoked).")
        raise HTTPException(401, message, headers={"WWW-Authenticate": 'Bearer realm="archive"'})
    return user


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
