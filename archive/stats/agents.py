"""Who is asking: the Open Podcast Analytics Working Group's user-agents-v2 patterns.

Their published files (`bots.json`, `apps.json`, `libraries.json`, `browsers.json`,
`devices.json`, each `{"entries": [{"name", "pattern", "category"?}, …]}`) are fetched at run
time by `archive stats update-agents` and kept in the bucket as one object, so every process
classifies alike and nothing of theirs is copied into this repository. Matching follows their
README: the first entry whose pattern matches, trying bots, apps, libraries, browsers in that
order; a device (and its category) is looked up separately. Until the files are fetched, a
small fallback of our own applies: obvious bots, crawlers and HTTP libraries, a few common apps.

Bots and libraries are not counted (IAB v2.3 filtering), nor requests without a user agent.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive.errors import InvalidInput, NotFound
from archive.storage import ObjectStore

log = logging.getLogger("archive.stats.agents")

AGENTS_KEY = "stats/agents/user-agents-v2.json"
DEFAULT_SOURCE = "https://raw.githubusercontent.com/opawg/user-agents-v2/master/src"
MATCH_ORDER = ("bots", "apps", "libraries", "browsers")
REQUIRED_FILES = MATCH_ORDER
OPTIONAL_FILES = ("devices",)
KINDS = {"bots": "bot", "apps": "app", "libraries": "library", "browsers": "browser"}
NOT_COUNTED = ("bot", "library", "none")  # kinds IAB filtering leaves out
MAX_FILE_BYTES = 8 * 1024 * 1024
FETCH_TIMEOUT = 30
CACHE_LIMIT = 20_000

# Our own fallback, in the same schema: written here, deliberately small.
FALLBACK: dict[str, list[dict[str, str]]] = {
    "bots": [
        {"name": "Headless browser", "pattern": r"HeadlessChrome|PhantomJS|Puppeteer"},
        {"name": "Link preview", "pattern": r"facebookexternalhit|Slackbot|Twitterbot|Discordbot"},
        {"name": "Generic bot", "pattern": r"(?i)(bot|crawler|spider|scraper|slurp)([^a-z]|$)"},
        {"name": "Monitoring", "pattern": r"(?i)uptime|pingdom|monitor"},
    ],
    "apps": [
        {"name": "AntennaPod", "pattern": r"^AntennaPod/"},
        {"name": "Apple Podcasts", "pattern": r"^Podcasts/|^iTunes/|^AppleCoreMedia/"},
        {"name": "Overcast", "pattern": r"^Overcast/"},
        {"name": "Pocket Casts", "pattern": r"Pocket ?Casts"},
        {"name": "Podcast Addict", "pattern": r"PodcastAddict|Podcast Addict"},
        {"name": "Spotify", "pattern": r"^Spotify/"},
        {"name": "Castro", "pattern": r"^Castro "},
        {"name": "gPodder", "pattern": r"^gPodder/"},
        {"name": "Podverse", "pattern": r"Podverse"},
    ],
    "libraries": [
        {"name": "curl", "pattern": r"^curl/"},
        {"name": "Wget", "pattern": r"^Wget/"},
        {"name": "Python", "pattern": r"python-requests|Python-urllib|aiohttp|python-httpx"},
        {"name": "Go", "pattern": r"^Go-http-client/"},
        {"name": "Java", "pattern": r"^Java/|Apache-HttpClient"},
        {"name": "OkHttp", "pattern": r"^okhttp/"},
        {"name": "Node.js", "pattern": r"node-fetch|^axios/|^undici"},
        {"name": "FFmpeg", "pattern": r"^Lavf/"},
    ],
    "browsers": [
        {"name": "Edge", "pattern": r"Edg/"},
        {"name": "Chrome", "pattern": r"Chrome/"},
        {"name": "Firefox", "pattern": r"Firefox/"},
        {"name": "Safari", "pattern": r"Safari/"},
    ],
    "devices": [
        {"name": "iPhone", "pattern": r"iPhone", "category": "mobile"},
        {"name": "iPad", "pattern": r"iPad", "category": "tablet"},
        {"name": "Android", "pattern": r"Android", "category": "mobile"},
        {"name": "Windows", "pattern": r"Windows", "category": "computer"},
        {"name": "Mac", "pattern": r"Macintosh|Mac OS X|macOS", "category": "computer"},
        {"name": "Linux", "pattern": r"Linux|X11", "category": "computer"},
    ],
}


@dataclass(frozen=True)
class Agent:
    """What a user agent is, as the charts name it."""

    kind: str  # app, browser, bot, library, unknown, none
    app: str  # the entry's name, "" when unknown
    device: str = ""
    device_category: str = ""

    @property
    def counted(self) -> bool:
        return self.kind not in NOT_COUNTED


@dataclass(frozen=True)
class _Entry:
    name: str
    pattern: re.Pattern[str]
    category: str


class Classifier:
    """Compiled patterns with a bounded cache (user agents repeat a great deal)."""

    def __init__(self, files: dict[str, list[dict[str, Any]]], source: str = "fallback") -> None:
        self.source = source
        self.skipped = 0
        self.files = {name: self._compile(files.get(name) or [])
                      for name in (*MATCH_ORDER, *OPTIONAL_FILES)}
        self._cache: dict[str, Agent] = {}

    def _compile(self, entries: list[dict[str, Any]]) -> list[_Entry]:
        compiled = []
        for entry in entries:
            try:
                compiled.append(_Entry(str(entry["name"]), re.compile(str(entry["pattern"])),
                                       str(entry.get("category") or "")))
            except (KeyError, TypeError, re.error):
                self.skipped += 1  # a pattern Python's re cannot read: left out, not fatal
        return compiled

    def classify(self, user_agent: str) -> Agent:
        found = self._cache.get(user_agent)
        if found is None:
            found = self._classify(user_agent)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[user_agent] = found
        return found

    def _classify(self, user_agent: str) -> Agent:
        text = user_agent.replace("\r", " ").replace("\n", " ").strip()
        if not text:
            return Agent("none", "")
        kind, app = "unknown", ""
        for file in MATCH_ORDER:
            entry = _first_match(self.files[file], text)
            if entry is not None:
                kind, app = KINDS[file], entry.name
                break
        if kind == "bot":
            return Agent(kind, app)
        device = _first_match(self.files["devices"], text)
        return Agent(kind, app, device.name if device else "",
                     device.category if device else "")


def _first_match(entries: list[_Entry], text: str) -> _Entry | None:
    for entry in entries:
        if entry.pattern.search(text):
            return entry
    return None


def fallback() -> Classifier:
    return Classifier(FALLBACK, "fallback")


def load_classifier(store: ObjectStore) -> Classifier:
    """The patterns kept in the bucket, or the fallback until `update-agents` has run."""
    try:
        document, _ = store.get_json(AGENTS_KEY)
    except NotFound:
        return fallback()
    files = document.get("files") if isinstance(document, dict) else None
    if not isinstance(files, dict):
        log.warning("%s is not in the expected form; using the fallback patterns", AGENTS_KEY)
        return fallback()
    return Classifier(files, str(document.get("source", "")))


# -- update-agents ------------------------------------------------------------------------------


def read_source(source: str) -> dict[str, list[dict[str, Any]]]:
    """The pattern files from a folder or a URL prefix; InvalidInput with one line on failure."""
    reader = _reader(source)
    files: dict[str, list[dict[str, Any]]] = {}
    for name in (*REQUIRED_FILES, *OPTIONAL_FILES):
        raw = reader(f"{name}.json")
        if raw is None:
            if name in REQUIRED_FILES:
                raise InvalidInput(f"{source}: {name}.json is missing.")
            continue
        files[name] = _entries(raw, f"{name}.json")
    return files


def _reader(source: str) -> Callable[[str], bytes | None]:
    if source.startswith(("http://", "https://")):
        base = source.rstrip("/")
        return lambda name: _fetch(f"{base}/{name}")
    folder = Path(source)
    if not folder.is_dir():
        raise InvalidInput(f"{source} is neither a folder nor an http(s) URL.")

    def read(name: str) -> bytes | None:
        path = folder / name
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidInput(f"{path} is larger than {MAX_FILE_BYTES // 2**20} MB.")
        return path.read_bytes()

    return read


def _fetch(url: str) -> bytes | None:
    request = urllib.request.Request(url, headers={"User-Agent": "archive-stats/1"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:
            data: bytes = response.read(MAX_FILE_BYTES + 1)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise InvalidInput(f"{url} answered {error.code}.") from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise InvalidInput(f"{url} could not be fetched ({error}).") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{url} is larger than {MAX_FILE_BYTES // 2**20} MB.")
    return data


def _entries(raw: bytes, name: str) -> list[dict[str, Any]]:
    """Only what matching needs (name, pattern, category), each checked."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"{name} is not valid JSON.") from None
    entries = document.get("entries") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput(f"{name} has no \"entries\" list (user-agents-v2 schema).")
    kept = []
    for entry in entries:
        if (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and isinstance(entry.get("pattern"), str)):
            item = {"name": entry["name"][:200], "pattern": entry["pattern"][:4000]}
            if isinstance(entry.get("category"), str):
                item["category"] = entry["category"][:100]
            kept.append(item)
    if not kept:
        raise InvalidInput(f"{name} has no entries with a name and a pattern.")
    return kept


def update_agents(store: ObjectStore, source: str = DEFAULT_SOURCE,
                  files: dict[str, list[dict[str, Any]]] | None = None) -> Classifier:
    """Fetch (unless `files` were read already), check (every pattern is compiled) and keep
    the patterns in the bucket, as one object so every process switches at once."""
    files = read_source(source) if files is None else files
    classifier = Classifier(files, source)
    store.put_json(AGENTS_KEY, {"source": source, "fetched_at": datetime.now(UTC).isoformat(),
                                "files": files})
    return classifier
