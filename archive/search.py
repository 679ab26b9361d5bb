"""Full-text search: SQLite FTS5 in memory, kept in step with the catalogue one episode at a time.

Two FTS5 tables share one connection:

- `episodes`: one row per published episode (title, speakers, affiliations, series, tags,
  description and the transcript's words, see `transcript_terms`), ranked with weighted bm25
  so a title hit beats a passing mention in an hour of transcript;
- `cues`: one row per transcript cue, so a hit can link to the moment it was said. Cue rowids
  are `doc << 20 | n`, which makes "the first matching cue of this episode" a rowid-range
  query. (Not the best-ranked cue: bm25 would count the phrase over every cue of every
  episode, milliseconds per result at 10,000 episodes.)

`sync()` diffs the catalogue against what is indexed (by episode id and a version made of
`updated_at`, the transcript's SHA-256 and the series title) and only adds or removes the
episodes that changed. A transcript is fetched and parsed at most once per SHA-256: when an
episode is re-indexed with the same transcript, its cues are read back from the index.

Snippets are built with control-character markers, escaped as a whole, and only then are the
markers turned into `<mark>`, so no metadata HTML ever reaches a page unescaped.
"""

from __future__ import annotations

import html
import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from archive.errors import ArchiveError, Conflict, NotFound
from archive.models import Episode, MediaFile
from archive.storage import ObjectStore
from feeds import sanitise_html
from feeds.text import html_to_text
from media.errors import MediaError
from media.transcripts import parse_transcript

log = logging.getLogger("archive.search")

SCHEMA_VERSION = 1  # bump when SCHEMA or what is indexed changes: old snapshots are ignored
SNAPSHOT_KEY = "search/index.sqlite"
SNAPSHOT_TYPE = "application/vnd.sqlite3"
PRUNE_ATTEMPTS = 5
CUE_BITS = 20  # up to a million cues per episode
TOKENIZER = "porter unicode61 remove_diacritics 2"
# bm25 weights, in column order: title, speakers, affiliations, series, tags, description,
# transcript.
WEIGHTS = (10.0, 6.0, 3.0, 3.0, 5.0, 2.0, 1.0)
METADATA_COLUMNS = "{title speakers affiliations series tags description}"
MAX_TERMS = 16
OPTIMIZE_AFTER = 50  # changed episodes in one sync
MAX_QUERY_CHARS = 300
_OPEN, _CLOSE = "\x02", "\x03"  # snippet markers; stripped from everything indexed
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r'"([^"]*)"?|([^\s"]+)')
_WORD = re.compile(r"\w+")

SCHEMA = f"""
CREATE VIRTUAL TABLE episodes USING fts5(
    title, speakers, affiliations, series, tags, description, transcript,
    tokenize = '{TOKENIZER}'
);
CREATE VIRTUAL TABLE cues USING fts5(text, start UNINDEXED, tokenize = '{TOKENIZER}');
CREATE TABLE docs (
    doc INTEGER PRIMARY KEY,
    episode_id TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL,
    transcript_sha TEXT NOT NULL,
    cue_count INTEGER NOT NULL
);
CREATE INDEX docs_sha ON docs (transcript_sha);
PRAGMA user_version = {SCHEMA_VERSION};
"""


DISK_CACHE_KIB = 32 * 1024  # an on-disk index keeps at most this much in the process


@dataclass(frozen=True)
class Cue:
    """One transcript cue, as pages and the index use it."""

    start: float
    end: float
    text: str
    speaker: str | None = None


CueLoader = Callable[[MediaFile], Sequence[Cue]]


@dataclass(frozen=True)
class Hit:
    """One matching episode: where to link, and the snippets that show why it matched."""

    episode_id: str
    snippet: Markup | None  # from the metadata, when the query matched there
    moment: float | None  # the start of the best matching transcript cue
    moment_snippet: Markup | None

    @property
    def in_metadata(self) -> bool:
        return self.snippet is not None


@dataclass(frozen=True)
class Results:
    query: str
    hits: list[Hit]
    total: int


def seconds_fragment(seconds: float) -> str:
    """12.5 -> '12.5', 3723.0 -> '3723': the number written after `#t=`."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def episode_version(episode: Episode, series_title: str) -> str:
    transcript = episode.files.get("transcript")
    return "|".join((episode.updated_at.isoformat(), transcript.sha256 if transcript else "",
                     series_title))


@dataclass(frozen=True)
class Query:
    """The user's words as two safe FTS5 expressions.

    `exact` keeps phrases as phrases (for cues and metadata). `broad` is for the episode-level
    table, whose transcript column holds each word only a few times in no particular order, so
    a phrase there is matched as all of its words.
    """

    exact: str
    broad: str

    @classmethod
    def parse(cls, text: str) -> Query:
        """Every term quoted, `OR` kept; the rest of FTS5's syntax (a stray quote, `AND`,
        `NEAR(`, `col:`, `word*`) is read as plain words, so no input is a syntax error."""
        terms: list[list[str] | None] = []  # None stands for OR
        for match in _TOKEN.finditer(text[:MAX_QUERY_CHARS]):
            phrase, bare = match.group(1), match.group(2)
            if bare == "OR":
                if terms and terms[-1] is not None:
                    terms.append(None)
                continue
            if bare in ("AND", "NOT"):
                continue
            words = _WORD.findall(phrase if phrase is not None else bare)
            if words and len(terms) < MAX_TERMS * 2:
                terms.append(words[:MAX_TERMS])
        while terms and terms[-1] is None:
            terms.pop()
        return cls(" ".join(_exact(t) for t in terms), " ".join(_broad(t) for t in terms))

    @classmethod
    def phrase(cls, text: str) -> Query:
        """The fallback when a query still does not parse: all its words as one phrase."""
        words = _WORD.findall(text[:MAX_QUERY_CHARS])[:MAX_TERMS]
        return cls(_exact(words), _broad(words)) if words else cls("", "")


def _exact(term: list[str] | None) -> str:
    return "OR" if term is None else f'"{" ".join(term)}"'


def _broad(term: list[str] | None) -> str:
    if term is None or len(term) == 1:
        return _exact(term)
    words = " ".join(f'"{word}"' for word in term)
    return f'({_exact(term)} OR {{transcript}} : ({words}))'


def transcript_terms(cues: Iterable[Cue]) -> str:
    """Each word of a transcript repeated 1 + log2(count) times (at most 4): enough for bm25
    to tell a talk about sanctions from a passing mention, without an hour of positions to
    decode for every common word in every episode."""
    counts: dict[str, int] = {}
    for cue in cues:
        for word in _WORD.findall(cue.text.lower()):
            counts[word] = counts.get(word, 0) + 1
    return " ".join(" ".join([word] * min(4, count.bit_length())) for word, count in
                    counts.items())


def mark_snippet(raw: str) -> Markup:
    """Escape everything, then turn our private markers into <mark>."""
    escaped = html.escape(raw, quote=True)
    return Markup(escaped.replace(_OPEN, "<mark>").replace(_CLOSE, "</mark>"))


def _clean(text: str) -> str:
    return _UNSAFE.sub(" ", text)


class SearchIndex:
    """One index per process; every method is safe to call from many threads.

    In memory by default; with `path`, a SQLite file of this process's own (the app keeps it
    under `ARCHIVE_DATA_DIR`), so a large archive's index lives in the page cache, not in the
    process: it is only a cache, rebuilt from the bucket's snapshot, so it is written without
    a journal or fsync.
    """

    def __init__(self, *, fetch_workers: int = 8, path: Path | None = None) -> None:
        self._path = path
        self._db = self._connect()
        self._db.executescript(SCHEMA)
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._synced: object = None
        self._fetch_workers = fetch_workers

    def _connect(self) -> sqlite3.Connection:
        if self._path is None:
            return sqlite3.connect(":memory:", check_same_thread=False)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute(f"PRAGMA cache_size=-{DISK_CACHE_KIB}")
        return db

    def close(self) -> None:
        """Close the index, and remove its file when it has one."""
        with self._lock:
            self._db.close()
            if self._path is not None:
                self._path.unlink(missing_ok=True)

    # -- keeping in step with the catalogue ---------------------------------------------

    def sync(self, episodes: Iterable[Episode], series_titles: Mapping[str, str],
             load_cues: CueLoader, *, token: object = None) -> int:
        """Make the index hold exactly `episodes`; returns how many episodes changed. `token`
        (the catalogue snapshot) lets a second call for the same snapshot return at once."""
        if token is not None and token is self._synced:
            return 0
        with self._sync_lock:
            if token is not None and token is self._synced:
                return 0
            wanted = {e.id: (e, episode_version(e, series_titles.get(e.series, "")))
                      for e in episodes}
            indexed = self._indexed_versions()
            stale = [eid for eid, version in indexed.items()
                     if wanted.get(eid, (None, None))[1] != version]
            fresh = [(e, v) for eid, (e, v) in wanted.items() if indexed.get(eid) != v]
            cues = self._gather_cues([e for e, _ in fresh], load_cues)
            with self._lock, self._db:
                for episode_id in stale:
                    self._remove(episode_id)
                for episode, version in fresh:
                    self._add(episode, version, series_titles.get(episode.series, ""),
                              cues.get(episode.id, ()))
                if len(fresh) + len(stale) >= OPTIMIZE_AFTER:
                    self._optimize()
            self._synced = token
            return len(fresh) + len(stale)

    # -- persistence: a cold start restores the index instead of re-reading every transcript

    def snapshot(self) -> bytes:
        """The whole index as one SQLite database image, holding nothing of removed episodes."""
        return self.snapshot_with_ids()[0]

    def snapshot_with_ids(self) -> tuple[bytes, set[str]]:
        """The image and the episodes it holds, taken together."""
        with self._lock:
            image = self._db.serialize()
            ids = {row[0] for row in self._db.execute("SELECT episode_id FROM docs")}
        return _compacted(image), ids

    def episode_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT episode_id FROM docs")}

    def forget(self, episode_ids: Iterable[str]) -> None:
        """Take episodes out of the index (their words stay in freed pages until `snapshot`)."""
        with self._sync_lock, self._lock, self._db:
            for episode_id in episode_ids:
                self._remove(episode_id)
            self._synced = None

    def restore(self, image: bytes) -> bool:
        """Replace the index with a snapshot; False (index unchanged) if it is not usable.

        `sync` then brings it up to date, so a snapshot of any age is a valid starting point.
        """
        try:
            probe = sqlite3.connect(":memory:")
            probe.deserialize(image)
            version = probe.execute("PRAGMA user_version").fetchone()[0]
            probe.execute("SELECT count(*) FROM docs").fetchone()
            probe.close()
        except sqlite3.Error:
            return False
        if version != SCHEMA_VERSION:
            return False
        with self._sync_lock, self._lock:
            if self._path is None:
                self._db.deserialize(image)
            else:  # a database file is its image: write it, then open it
                self._db.close()
                partial = self._path.with_suffix(".partial")
                partial.write_bytes(image)
                partial.replace(self._path)
                self._db = self._connect()
            self._synced = None
        return True


    def _optimize(self) -> None:
        """Merge the index segments after a big load: lookups then seek in one b-tree instead
        of dozens (a second for 10,000 episodes, and it halves search latency)."""
        self._db.execute("INSERT INTO episodes (episodes) VALUES ('optimize')")
        self._db.execute("INSERT INTO cues (cues) VALUES ('optimize')")

    def _indexed_versions(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT episode_id, version FROM docs"))

    def _gather_cues(self, episodes: list[Episode], load_cues: CueLoader
                     ) -> dict[str, Sequence[Cue]]:
        """Cues for every episode about to be (re)indexed: from the index when the same
        transcript is already there, otherwise fetched (in parallel) once per SHA-256."""
        by_sha: dict[str, Sequence[Cue]] = {}
        to_fetch: dict[str, MediaFile] = {}
        for episode in episodes:
            transcript = episode.files.get("transcript")
            if transcript is None or transcript.sha256 in by_sha:
                continue
            known = self._indexed_cues(transcript.sha256)
            if known is not None:
                by_sha[transcript.sha256] = known
            else:
                to_fetch[transcript.sha256] = transcript
        by_sha.update(self._fetch(to_fetch, load_cues))
        return {e.id: by_sha.get(e.files["transcript"].sha256, ())
                for e in episodes if "transcript" in e.files}

    def _fetch(self, files: dict[str, MediaFile], load_cues: CueLoader
               ) -> dict[str, Sequence[Cue]]:
        def load(item: tuple[str, MediaFile]) -> tuple[str, Sequence[Cue]]:
            sha, media_file = item
            try:
                return sha, load_cues(media_file)
            except (ArchiveError, MediaError) as error:
                log.warning("transcript %s not indexed: %s", media_file.key, error)
                return sha, ()

        if len(files) <= 1:
            return dict(map(load, files.items()))
        with ThreadPoolExecutor(min(self._fetch_workers, len(files))) as pool:
            return dict(pool.map(load, files.items()))

    def _indexed_cues(self, sha: str) -> list[Cue] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT doc FROM docs WHERE transcript_sha = ? LIMIT 1", (sha,)).fetchone()
            if row is None:
                return None
            low, high = _cue_range(row[0])
            rows = self._db.execute(
                "SELECT start, text FROM cues WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                (low, high)).fetchall()
        return [Cue(float(start), float(start), text) for start, text in rows]

    def _remove(self, episode_id: str) -> None:
        row = self._db.execute("SELECT doc FROM docs WHERE episode_id = ?",
                               (episode_id,)).fetchone()
        if row is None:
            return
        low, high = _cue_range(row[0])
        self._db.execute("DELETE FROM cues WHERE rowid BETWEEN ? AND ?", (low, high))
        self._db.execute("DELETE FROM episodes WHERE rowid = ?", (row[0],))
        self._db.execute("DELETE FROM docs WHERE doc = ?", (row[0],))

    def _add(self, episode: Episode, version: str, series_title: str,
             cues: Sequence[Cue]) -> None:
        transcript = episode.files.get("transcript")
        sha = transcript.sha256 if transcript and cues else ""
        cursor = self._db.execute(
            "INSERT INTO docs (episode_id, version, transcript_sha, cue_count) VALUES (?,?,?,?)",
            (episode.id, version, sha, len(cues)))
        doc = cursor.lastrowid
        assert doc is not None
        self._db.execute(
            "INSERT INTO episodes (rowid, title, speakers, affiliations, series, tags, "
            "description, transcript) VALUES (?,?,?,?,?,?,?,?)",
            (doc, *_metadata_columns(episode, series_title),
             transcript_terms(cues)))
        low, _ = _cue_range(doc)
        self._db.executemany(
            "INSERT INTO cues (rowid, text, start) VALUES (?,?,?)",
            ((low + n, _clean(c.text), c.start) for n, c in enumerate(cues[: 1 << CUE_BITS])))

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM docs").fetchone()[0])

    # -- asking ---------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = 20, offset: int = 0) -> Results:
        """Ranked hits for the user's words; a query FTS5 cannot read is retried as a
        phrase, and a query that still fails finds nothing (never an error page)."""
        for query in (Query.parse(text), Query.phrase(text)):
            if not query.exact:
                continue
            try:
                return self._run(text, query, limit, offset)
            except sqlite3.OperationalError as error:
                log.info("search %r as %r failed: %s", text, query, error)
        return Results(text, [], 0)

    def _run(self, text: str, query: Query, limit: int, offset: int) -> Results:
        weights = ", ".join(str(w) for w in WEIGHTS)
        with self._lock:
            total = self._db.execute("SELECT count(*) FROM episodes WHERE episodes MATCH ?",
                                     (query.broad,)).fetchone()[0]
            rows = self._db.execute(
                f"SELECT rowid FROM episodes WHERE episodes MATCH ? "
                f"ORDER BY bm25(episodes, {weights}) LIMIT ? OFFSET ?",
                (query.broad, limit, offset)).fetchall()
            hits = [self._hit(doc, query.exact) for (doc,) in rows]
        return Results(text, hits, int(total))

    def _hit(self, doc: int, expression: str) -> Hit:
        episode_id = self._db.execute("SELECT episode_id FROM docs WHERE doc = ?",
                                      (doc,)).fetchone()[0]
        meta = self._db.execute(
            f"SELECT snippet(episodes, -1, '{_OPEN}', '{_CLOSE}', '…', 24) FROM episodes "
            "WHERE episodes MATCH ? AND rowid = ?",
            (f"{METADATA_COLUMNS} : ({expression})", doc)).fetchone()
        low, high = _cue_range(doc)
        cue = self._db.execute(
            f"SELECT start, snippet(cues, 0, '{_OPEN}', '{_CLOSE}', '…', 24) FROM cues "
            "WHERE cues MATCH ? AND rowid BETWEEN ? AND ? LIMIT 1",
            (expression, low, high)).fetchone()
        return Hit(
            episode_id=episode_id,
            snippet=mark_snippet(meta[0]) if meta else None,
            moment=float(cue[0]) if cue else None,
            moment_snippet=mark_snippet(cue[1]) if cue else None,
        )


def _compacted(image: bytes) -> bytes:
    """A copy of the image with no trace of deleted rows. SQLite 3.40's FTS5 has no
    secure-delete: a removed row's words stay in older index segments and freed pages, so the
    segments are merged (`optimize` drops deleted entries) and the file rebuilt (VACUUM)."""
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(image)
        with db:
            db.execute("INSERT INTO episodes (episodes) VALUES ('optimize')")
            db.execute("INSERT INTO cues (cues) VALUES ('optimize')")
        db.execute("VACUUM")
        return db.serialize()
    finally:
        db.close()


def _cue_range(doc: int) -> tuple[int, int]:
    low = doc << CUE_BITS
    return low, low + (1 << CUE_BITS) - 1


def _metadata_columns(episode: Episode, series_title: str) -> tuple[str, ...]:
    description = html_to_text(sanitise_html(episode.description)) if episode.description else ""
    return tuple(_clean(value) for value in (
        episode.title,
        " ; ".join(p.name for p in episode.speakers),
        " ; ".join(p.affiliation for p in episode.speakers if p.affiliation),
        series_title,
        " ; ".join(episode.tags),
        description,
    ))


class Transcripts:
    """Transcript cues from the bucket, parsed once per SHA-256 and kept in a small LRU, so a
    popular episode page does not fetch and parse its VTT on every request."""

    def __init__(self, store: ObjectStore, *, size: int = 128) -> None:
        self.store = store
        self.size = size
        self._cache: OrderedDict[str, tuple[Cue, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def cues(self, media_file: MediaFile) -> tuple[Cue, ...]:
        with self._lock:
            if media_file.sha256 in self._cache:
                self._cache.move_to_end(media_file.sha256)
                return self._cache[media_file.sha256]
        cues = self.load(media_file)
        with self._lock:
            self._cache[media_file.sha256] = cues
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return cues

    def load(self, media_file: MediaFile) -> tuple[Cue, ...]:
        """Fetch and parse without caching (the search index keeps its own copy)."""
        result = self.store.get_bytes(media_file.key)
        if result is None:
            return ()
        parsed = parse_transcript(result[0])
        return tuple(Cue(c.start, c.end, c.text, c.speaker) for c in parsed.cues if c.text)


def load_snapshot(index: SearchIndex, store: ObjectStore) -> bool:
    """Start from the snapshot in the bucket, if there is a usable one."""
    try:
        found = store.get_bytes(SNAPSHOT_KEY)
    except ArchiveError:
        return False
    return found is not None and index.restore(found[0])


def save_snapshot(index: SearchIndex, store: ObjectStore,
                  published: Callable[[], Collection[str]] | None = None) -> None:
    """Store the index for the next cold start (any process's snapshot will do).

    `published` (the ids published now, read after the upload) guards against a process whose
    index predates a delete or unpublish: what it put back is pruned again at once.
    """
    try:
        image, ids = index.snapshot_with_ids()
        store.put_bytes(SNAPSHOT_KEY, image, SNAPSHOT_TYPE)
        if published is not None:
            current = set(published())
            if ids - current:
                prune_snapshot(store, current)
    except ArchiveError as error:
        log.warning("search snapshot not saved: %s", error)


def prune_snapshot(store: ObjectStore, published: Collection[str]) -> int:
    """Rewrite the bucket's snapshot without the episodes not in `published` (after a delete
    or unpublish, from any process: no index need be loaded); returns how many it removed.

    The rewrite is conditional (If-Match), so a snapshot saved meanwhile is pruned in turn. A
    snapshot that cannot be read or rewritten is deleted: it is only a faster cold start.
    """
    for _ in range(PRUNE_ATTEMPTS):
        try:
            found = store.get_bytes(SNAPSHOT_KEY)
        except NotFound:
            return 0
        assert found is not None
        image, etag = found
        index = SearchIndex(fetch_workers=1)
        if not index.restore(image):
            store.delete(SNAPSHOT_KEY)
            return 0
        gone = index.episode_ids() - set(published)
        if not gone:
            return 0
        index.forget(gone)
        try:
            store.put_bytes(SNAPSHOT_KEY, index.snapshot(), SNAPSHOT_TYPE, if_match=etag)
            return len(gone)
        except Conflict:
            continue
    store.delete(SNAPSHOT_KEY)
    return 0
