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

import contextlib
import fcntl
import html
import logging
import re
import sqlite3
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from markupsafe import Markup

from archive import leftovers
from archive.errors import ArchiveError, Conflict, NotFound
from archive.models import Episode, MediaFile
from archive.storage import ObjectStore
from feeds import sanitise_html
from feeds.text import html_to_text
from media.errors import MediaError
from media.transcripts import parse_transcript

log = logging.getLogger("archive.search")

SCHEMA_VERSION = 2  # bump when SCHEMA or what is indexed changes (see `_upgrade`)
SNAPSHOT_KEY = "search/index.sqlite"
SNAPSHOT_TYPE = "application/vnd.sqlite3"
PRUNE_ATTEMPTS = 5
CUE_BITS = 20  # up to a million cues per episode
TOKENIZER = "porter unicode61 remove_diacritics 2"
# bm25 weights, in column order: title, speakers, affiliations, series, tags, description,
# transcript.
WEIGHTS = (10.0, 6.0, 3.0, 3.0, 5.0, 2.0, 1.0)
METADATA_COLUMNS = "{title speakers affiliations series tags description}"
RANKING = f"bm25(episodes, {', '.join(map(str, WEIGHTS))})"
# bm25 scores every match (~1 µs each, 100 ms for a word in all of 100,000 episodes): a query
# matching more than this lists the newest in the index first (docs are added oldest first,
# so that is the newest published, then the latest changed), which costs nothing.
RANKED_MATCHES = 5_000
MAX_TERMS = 16
OPTIMIZE_AFTER = 50  # changed episodes in one sync
MAX_QUERY_CHARS = 300
_OPEN, _CLOSE = "\x02", "\x03"  # snippet markers; stripped from everything indexed
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r'"([^"]*)"?|([^\s"]+)')
_WORD = re.compile(r"\w+")

STATE_TABLE = "CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);"  # since 2
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
{STATE_TABLE}
PRAGMA user_version = {SCHEMA_VERSION};
"""


DISK_CACHE_KIB = 32 * 1024  # an on-disk index keeps at most this much in the process
WRITER_CACHE_KIB = 8 * 1024  # and its writing connection this much (writes are batches)
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process's batch on a shared file
SYNC_BATCH = 500  # episodes fetched and written per transaction (bounded memory, short locks)
HOST_INDEX = f"host-v{SCHEMA_VERSION}.sqlite"  # the index the processes of one host share


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
    ranked: bool = True  # False: too many matches to rank, newest in the index first


def seconds_fragment(seconds: float) -> str:
    """12.5 -> '12.5', 3723.0 -> '3723': the number written after `#t=`."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def episode_version(episode: Episode, series_title: str) -> str:
    return "|".join((episode.updated_at.isoformat(), episode.transcript_sha256, series_title))


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
    """One index per process, or one shared by the processes of a host; every method is safe
    to call from many threads.

    In memory by default. With `path`, a SQLite file: its pages live in the OS page cache, not
    in the process. `keep` marks the host's shared file (`for_host`): a restarted process or a
    new worker opens it and is ready at once, where a per-process file would first download
    the bucket's snapshot (~12 KB an episode). Writers take turns by SQLite's own lock in
    small batches; readers never wait for them (WAL). The file is only a cache of the
    catalogue and the transcripts: it can always be deleted.
    """

    def __init__(self, *, fetch_workers: int = 8, path: Path | None = None,
                 keep: bool = False) -> None:
        self._path = path
        self._keep = keep
        self._fetch_workers = fetch_workers
        self._sync_lock = threading.Lock()
        self._synced: object = None
        self._lock = threading.RLock()  # the reading connection
        # A file has a second connection for writing, so a batch this process writes (or
        # waits to write) never holds up its own searches; in memory there is one.
        self._write_lock = self._lock if path is None else threading.RLock()
        self._open()

    def _open(self) -> None:
        self._db = self._connect()
        self._writer = self._db if self._path is None else self._connect(WRITER_CACHE_KIB)
        with self._write_lock:
            exists = self._writer.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'docs'").fetchone()[0]
            if not exists:
                self._writer.executescript(f"BEGIN IMMEDIATE; {SCHEMA} COMMIT;")

    def _connect(self, cache_kib: int = DISK_CACHE_KIB) -> sqlite3.Connection:
        if self._path is None:
            return sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None,
                             timeout=BUSY_TIMEOUT_S)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA secure_delete=ON")  # freed pages hold no removed episode's words
        db.execute(f"PRAGMA cache_size=-{cache_kib}")
        return db

    @classmethod
    def for_host(cls, folder: Path, store: ObjectStore | None = None, *,
                 fetch_workers: int = 8) -> SearchIndex:
        """The index the processes of this host share (`folder/HOST_INDEX`). The first process
        on a host fills it from the bucket's snapshot, streamed to disk (never held in
        memory); the others wait for that, then open the same file."""
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / HOST_INDEX
        with _host_lock(folder):
            leftovers.remove_dead(folder, "index-")  # per-process indexes of older versions
            leftovers.remove_dead(folder, "snapshot-")
            if not _usable(path):
                _discard(path)
                if store is not None:
                    _download_snapshot(store, path)
            return cls(path=path, keep=True, fetch_workers=fetch_workers)

    @property
    def folder(self) -> Path | None:
        """Where this index's file lives (scratch space for snapshots of its size)."""
        return self._path.parent if self._path is not None else None

    def close(self) -> None:
        """Close the index, and remove its file when it is this process's own."""
        with self._write_lock, self._lock:
            self._db.close()
            if self._writer is not self._db:
                self._writer.close()
            if self._path is not None and not self._keep:
                _discard(self._path)

    @contextlib.contextmanager
    def _writing(self, claim: _Claim | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection, taking SQLite's write lock at once
        (other processes' batches first), committed or rolled back as a whole. With `claim`,
        `_Superseded` (nothing written) once another process has claimed a newer snapshot."""
        with self._write_lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                if claim is not None and claim.superseded(_read_state(db)):
                    raise _Superseded
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Several statements on the reading connection that see one state of the index (a
        read transaction: in WAL mode, batches committed meanwhile are not seen)."""
        with self._lock:
            db = self._db
            opened = not db.in_transaction
            if opened:
                db.execute("BEGIN")
            try:
                yield db
            finally:
                if opened and db.in_transaction:
                    db.execute("COMMIT")

    # -- keeping in step with the catalogue ---------------------------------------------

    def sync(self, episodes: Iterable[Episode], series_titles: Mapping[str, str],
             load_cues: CueLoader, *, token: object = None,
             as_of: datetime | None = None, catalogue: str = "") -> int:
        """Make the index hold exactly `episodes`; returns how many episodes changed. `token`
        (the catalogue snapshot) lets a second call for the same snapshot return at once.
        `as_of` (the snapshot's time) keeps a shared index from going back: a process whose
        snapshot of the same `catalogue` (its guid) is older than the one the index was last
        brought up to leaves it alone."""
        if token is not None and token is self._synced:
            return 0
        with self._sync_lock:
            if token is not None and token is self._synced:
                return 0
            claim = None
            if as_of is not None:
                claim = self._claim(as_of, catalogue)
                if claim is None:
                    self._synced = token  # already at this snapshot, or at a newer one
                    return 0
            changed = 0
            try:
                changed = self._bring_up_to(episodes, series_titles, load_cues, claim)
            except _Superseded:  # a process with a newer snapshot took over: leave it to it
                log.info("search index: a newer catalogue snapshot is being indexed")
            self._synced = token
            return changed

    def _bring_up_to(self, episodes: Iterable[Episode], series_titles: Mapping[str, str],
                     load_cues: CueLoader, claim: _Claim | None) -> int:
        """The diff and its batches; every write checks `claim` still holds."""
        indexed = self._indexed_versions()
        present: set[str] = set()
        fresh = []
        for episode in episodes:
            present.add(episode.id)
            version = episode_version(episode, series_titles.get(episode.series, ""))
            if indexed.get(episode.id) != version:
                fresh.append((episode, version))
        gone = [episode_id for episode_id in indexed if episode_id not in present]
        del indexed, present
        fresh.reverse()  # oldest first: newer episodes get higher doc numbers
        changed = 0
        if gone:
            with self._writing(claim) as db:
                changed += sum(self._remove(episode_id) for episode_id in gone)
                # Their words stay in old segments until a merge: owed even if this process
                # stops before it, so the next sync does it.
                _put_state(db, merge_pending="1")
        for start in range(0, len(fresh), SYNC_BATCH):
            changed += self._add_batch(fresh[start:start + SYNC_BATCH], series_titles,
                                       load_cues, claim)
        if changed >= OPTIMIZE_AFTER or self._state("merge_pending"):
            with self._writing() as db:
                self._optimize()  # also drops removed episodes' words from the segments
                db.execute("DELETE FROM state WHERE key = 'merge_pending'")
            self._checkpoint()
        if claim is not None:
            with self._writing(claim) as db:
                _put_state(db, synced=claim.mark)
        return changed

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the file and empty it, so the pages that held a
        removed episode's words are overwritten (secure_delete) rather than kept in the log.
        Best effort, waiting at most a second for readers (which it would hold other writers
        up for): what it cannot copy now, a later checkpoint does."""
        if self._path is None:
            return
        with self._write_lock:
            self._writer.execute("PRAGMA busy_timeout = 1000")
            try:
                self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._writer.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")

    def _claim(self, as_of: datetime, catalogue: str) -> _Claim | None:
        """Record that the index is being brought up to `as_of`; None when there is nothing
        to do: it already reflects a newer snapshot of the same catalogue, or a sync to this
        very snapshot finished (a restart with nothing changed skips the diff of every
        episode, a second at 100,000)."""
        claim = _Claim(as_of.astimezone(UTC).isoformat(), catalogue)
        with self._writing() as db:
            state = _read_state(db)
            if claim.superseded(state) or (state.get("catalogue") == catalogue
                                           and state.get("synced") == claim.mark):
                return None
            _put_state(db, as_of=claim.stamp, catalogue=catalogue)
        return claim

    def _state(self, key: str) -> str | None:
        with self._write_lock:
            row = self._writer.execute("SELECT value FROM state WHERE key = ?",
                                       (key,)).fetchone()
        return row[0] if row else None

    def _add_batch(self, batch: list[tuple[Episode, str]], series_titles: Mapping[str, str],
                   load_cues: CueLoader, claim: _Claim | None) -> int:
        """Fetch a batch's transcripts, then write it in one transaction, skipping what
        another process wrote meanwhile."""
        cues = self._gather_cues([e for e, _ in batch], load_cues)
        added = 0
        with self._writing(claim) as db:
            current = dict(db.execute(
                f"SELECT episode_id, version FROM docs WHERE episode_id IN "
                f"({','.join('?' * len(batch))})", [e.id for e, _ in batch]))
            for episode, version in batch:
                if current.get(episode.id) == version:
                    continue
                self._remove(episode.id)
                self._add(episode, version, series_titles.get(episode.series, ""),
                          cues.get(episode.id, ()))
                added += 1
        return added

    # -- persistence: a cold start restores the index instead of re-reading every transcript

    @contextlib.contextmanager
    def snapshot_file(self) -> Iterator[tuple[Path, set[str]]]:
        """The whole index as a SQLite file, and the episodes it holds, holding nothing of
        removed episodes (segments merged, then copied page by page with VACUUM INTO, never
        held in memory); the file is scratch next to the index's own, removed afterwards."""
        with self._writing():
            self._optimize()
        with tempfile.TemporaryDirectory(prefix=leftovers.own_name("snapshot-"),
                                         dir=self.folder) as folder:
            target = Path(folder) / "snapshot.sqlite"
            with self._write_lock:
                self._writer.execute("VACUUM INTO ?", (str(target),))
            copy = sqlite3.connect(target)  # the ids of what was copied, not of what is now
            try:
                ids = {row[0] for row in copy.execute("SELECT episode_id FROM docs")}
            finally:
                copy.close()
            yield target, ids

    def snapshot(self) -> bytes:
        """The whole index as one SQLite database image (for small indexes and tests)."""
        return self.snapshot_with_ids()[0]

    def snapshot_with_ids(self) -> tuple[bytes, set[str]]:
        """The image and the episodes it holds, taken together."""
        with self.snapshot_file() as (target, ids):
            return target.read_bytes(), ids

    def episode_ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT episode_id FROM docs")}

    def forget(self, episode_ids: Iterable[str]) -> None:
        """Take episodes out of the index (their words stay in old segments until the next
        merge: `sync` after a removal, or `snapshot`)."""
        with self._sync_lock, self._writing() as db:
            for episode_id in episode_ids:
                self._remove(episode_id)
            _put_state(db, merge_pending="1")
            self._synced = None

    def restore(self, image: bytes) -> bool:
        """Replace the index with a snapshot; False (index unchanged) if it is not usable.

        `sync` then brings it up to date, so a snapshot of any age is a valid starting point.
        Not for a host's shared file, which other processes have open (`for_host` fills it).
        """
        if self._keep:
            raise ValueError("a shared index is filled by SearchIndex.for_host")
        try:
            probe = sqlite3.connect(":memory:")
            probe.deserialize(image)
            probe.execute("SELECT count(*) FROM docs").fetchone()
            if (version := _upgrade(probe)) == SCHEMA_VERSION:
                image = probe.serialize()
            probe.close()
        except sqlite3.Error:
            return False
        if version != SCHEMA_VERSION:
            return False
        with self._sync_lock, self._write_lock, self._lock:
            if self._path is None:
                self._db.deserialize(image)
            else:  # a database file is its image: write it, then open it
                self._db.close()
                self._writer.close()
                _discard(self._path)
                partial = self._path.with_suffix(".partial")
                partial.write_bytes(image)
                partial.replace(self._path)
                self._open()
            self._synced = None
        return True

    def _optimize(self) -> None:
        """Merge the index segments after a big load: lookups then seek in one b-tree instead
        of dozens (a second for 10,000 episodes, and it halves search latency)."""
        self._writer.execute("INSERT INTO episodes (episodes) VALUES ('optimize')")
        self._writer.execute("INSERT INTO cues (cues) VALUES ('optimize')")

    def _indexed_versions(self) -> dict[str, str]:
        with self._write_lock:
            return dict(self._writer.execute("SELECT episode_id, version FROM docs"))

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
        """The cues already indexed for this transcript, read in one state of the index;
        None when there are none to reuse (or not all of them)."""
        with self._reading() as db:
            row = db.execute("SELECT doc, cue_count FROM docs WHERE transcript_sha = ? LIMIT 1",
                             (sha,)).fetchone()
            if row is None:
                return None
            low, high = _cue_range(row[0])
            rows = db.execute(
                "SELECT start, text FROM cues WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                (low, high)).fetchall()
        if len(rows) != row[1]:
            return None
        return [Cue(float(start), float(start), text) for start, text in rows]

    def _remove(self, episode_id: str) -> int:
        """Within a write transaction: take one episode out; 1 if it was there."""
        db = self._writer
        row = db.execute("SELECT doc FROM docs WHERE episode_id = ?", (episode_id,)).fetchone()
        if row is None:
            return 0
        low, high = _cue_range(row[0])
        db.execute("DELETE FROM cues WHERE rowid BETWEEN ? AND ?", (low, high))
        db.execute("DELETE FROM episodes WHERE rowid = ?", (row[0],))
        db.execute("DELETE FROM docs WHERE doc = ?", (row[0],))
        return 1

    def _add(self, episode: Episode, version: str, series_title: str,
             cues: Sequence[Cue]) -> None:
        db = self._writer
        transcript = episode.files.get("transcript")
        sha = transcript.sha256 if transcript and cues else ""
        cursor = db.execute(
            "INSERT INTO docs (episode_id, version, transcript_sha, cue_count) VALUES (?,?,?,?)",
            (episode.id, version, sha, len(cues)))
        doc = cursor.lastrowid
        assert doc is not None
        db.execute(
            "INSERT INTO episodes (rowid, title, speakers, affiliations, series, tags, "
            "description, transcript) VALUES (?,?,?,?,?,?,?,?)",
            (doc, *_metadata_columns(episode, series_title),
             transcript_terms(cues)))
        low, _ = _cue_range(doc)
        db.executemany(
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
        with self._reading() as db:  # count, rows and hits from one state of the index
            total = db.execute("SELECT count(*) FROM episodes WHERE episodes MATCH ?",
                               (query.broad,)).fetchone()[0]
            ranked = total <= RANKED_MATCHES
            rows = db.execute(
                f"SELECT rowid FROM episodes WHERE episodes MATCH ? "
                f"ORDER BY {RANKING if ranked else 'rowid DESC'} LIMIT ? OFFSET ?",
                (query.broad, limit, offset)).fetchall()
            hits = [hit for (doc,) in rows if (hit := self._hit(doc, query.exact)) is not None]
        return Results(text, hits, int(total), ranked)

    def _hit(self, doc: int, expression: str) -> Hit | None:
        found = self._db.execute("SELECT episode_id FROM docs WHERE doc = ?", (doc,)).fetchone()
        if found is None:
            return None
        episode_id = found[0]
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


class _Superseded(Exception):
    """Another process claimed a newer catalogue snapshot while this one was syncing."""


@dataclass(frozen=True)
class _Claim:
    """A sync's catalogue snapshot (its time as ISO text, and the catalogue's guid)."""

    stamp: str
    catalogue: str

    @property
    def mark(self) -> str:
        """Names the snapshot: catalogue times strictly increase (`next_revision`)."""
        return f"{self.catalogue}@{self.stamp}"

    def superseded(self, state: Mapping[str, str]) -> bool:
        """Whether the index was claimed for a newer snapshot of the same catalogue."""
        return state.get("catalogue") == self.catalogue and state.get("as_of", "") > self.stamp


def _read_state(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM state"))


def _put_state(db: sqlite3.Connection, **values: str) -> None:
    db.executemany("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                   list(values.items()))


def _upgrade(db: sqlite3.Connection) -> int:
    """Bring an index of an earlier schema up to this one where nothing needs indexing again
    (an archive's first start on a new version keeps its snapshot); returns its version now.
    Version 1 lacked only the `state` table."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 1:
        db.executescript(f"BEGIN; {STATE_TABLE} PRAGMA user_version = 2; COMMIT;")
        version = 2
    return version


def _usable(path: Path) -> bool:
    """Whether a file is an index SQLite can read, of this schema (upgraded in place)."""
    if not path.exists():
        return False
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
        try:
            db.execute("SELECT count(*) FROM docs").fetchone()
            return _upgrade(db) == SCHEMA_VERSION
        finally:
            db.close()
    except sqlite3.Error as error:
        if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise  # in use by another process, not broken: never delete it under them
        return False  # not a database, damaged, or not an index (no `docs`)


def _discard(path: Path) -> None:
    """An index file and SQLite's companions (write-ahead log, shared memory)."""
    for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm"),
                      path.with_suffix(".partial")):
        companion.unlink(missing_ok=True)


@contextlib.contextmanager
def _host_lock(folder: Path) -> Iterator[None]:
    """One process at a time sets up the host's index (the others wait, then open it)."""
    with open(folder / "host.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _download_snapshot(store: ObjectStore, path: Path) -> bool:
    """The bucket's snapshot written to `path` as it arrives; False (nothing written) when
    there is none or it is not a usable index."""
    partial = path.with_suffix(".partial")
    try:
        with open(partial, "wb") as stream:
            store.download_to(SNAPSHOT_KEY, stream)
    except ArchiveError:
        partial.unlink(missing_ok=True)
        return False
    if not _usable(partial):
        partial.unlink(missing_ok=True)
        return False
    partial.replace(path)
    return True


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


def save_snapshot(index: SearchIndex, store: ObjectStore,
                  published: Callable[[], Collection[str]] | None = None) -> None:
    """Store the index for the next cold start (any process's snapshot will do).

    `published` (the ids published now, read after the upload) guards against a process whose
    index predates a delete or unpublish: what it put back is pruned again at once.
    """
    try:
        with index.snapshot_file() as (image, ids):
            store.upload_file(SNAPSHOT_KEY, image, SNAPSHOT_TYPE)  # streamed, in parts
        if published is not None:
            current = set(published())
            if ids - current:
                prune_snapshot(store, current)
    except (ArchiveError, OSError, sqlite3.Error) as error:
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
