"""The public pages: home with filters, series, episode (player, transcript, citations), people,
search, and citation downloads.

Views do all the I/O (catalogue snapshot, transcripts from the bucket in a thread, the search
index) and hand templates a finished context from `archive.web.views`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive import citations
from archive.catalog import Catalog, CatalogView
from archive.config import Settings
from archive.errors import ArchiveError, NotFound
from archive.models import Episode, MediaFile, Person
from archive.search import (
    OPTIMIZE_AFTER,
    Cue,
    SearchIndex,
    Transcripts,
    save_snapshot,
    seconds_fragment,
)
from archive.storage import ObjectStore
from archive.web import artwork, citing, views
from archive.web.http import is_count
from archive.web.views import PAGE_SIZE, Link
from feeds import sanitise_html
from feeds.text import html_to_text
from media.errors import MediaError

log = logging.getLogger("archive.web.pages")

CITATION_FORMATS = {
    "bib": ("application/x-bibtex; charset=utf-8", citations.bibtex),
    "ris": ("application/x-research-info-systems; charset=utf-8", citations.ris),
    "json": ("application/vnd.citationstyles.csl+json; charset=utf-8", citations.csl_json),
}
SPEEDS = ("0.75", "1", "1.25", "1.5", "1.75", "2")


class RenderedPages:
    """Rendered pages of the current catalogue snapshot, in a bounded LRU.

    A public page depends only on the snapshot and its address (no cookies, no user), so the
    same bytes can be sent until the catalogue changes; a new snapshot empties the cache.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._view: CatalogView | None = None
        self._pages: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, view: CatalogView, key: tuple[str, str]) -> bytes | None:
        with self._lock:
            if view is not self._view:
                self._view, self._pages = view, OrderedDict()
                return None
            body = self._pages.get(key)
            if body is not None:
                self._pages.move_to_end(key)
            return body

    def put(self, view: CatalogView, key: tuple[str, str], body: bytes) -> None:
        with self._lock:
            if view is self._view:
                self._pages[key] = body
                while len(self._pages) > self.size:
                    self._pages.popitem(last=False)


@dataclass
class PageServices:
    """What the pages keep per process: search index, transcript cache, rendered pages."""

    index: SearchIndex
    transcripts: Transcripts
    rendered: RenderedPages


def install(state: Any) -> None:
    """The pages' long-lived parts, built once in the app's lifespan. The search index is the
    file the processes of this host share under ARCHIVE_DATA_DIR/search: the first process on
    a host streams the bucket's snapshot into it, the others open it as it is."""
    index = SearchIndex.for_host(Path(state.archive.settings.data_dir) / "search",
                                 state.archive.store)
    state.page_services = PageServices(index, Transcripts(state.archive.store), RenderedPages())


def uninstall(state: Any) -> None:
    services = getattr(state, "page_services", None)
    if services is not None:
        services.index.close()


def services(request: Request) -> PageServices:
    return request.app.state.page_services  # type: ignore[no-any-return]


Endpoint = Callable[[Request], Awaitable[Response]]


def cached_page(endpoint: Endpoint) -> Endpoint:
    """Serve a page from `RenderedPages` when this snapshot already rendered it."""

    @functools.wraps(endpoint)
    async def serve(request: Request) -> Response:
        view = snapshot(request)
        rendered = services(request).rendered
        key = (request.url.path, request.url.query)
        body = rendered.get(view, key)
        if body is not None:
            return HTMLResponse(body)
        response = await endpoint(request)
        if response.status_code == 200 and "no-store" not in response.headers.get(
                "cache-control", ""):
            rendered.put(view, key, bytes(response.body))
        return response

    return serve


def snapshot(request: Request) -> CatalogView:
    return request.app.state.archive.catalog.cached_view()  # type: ignore[no-any-return]


def settings_of(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def render(request: Request, name: str, **context: Any) -> Response:
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, name, context)


def page_number(request: Request) -> int:
    """`?page=` as a positive number; anything else is page 1."""
    raw = request.query_params.get("page", "1")
    return int(raw) if is_count(raw, max_digits=5) and int(raw) > 0 else 1


def page_slice(items: list[Episode], page: int) -> list[Episode]:
    if page > views.page_count(len(items)):
        raise NotFound(f"There is no page {page} of this list.")
    return items[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]


def absolute(request: Request, path: str) -> str:
    return f"{settings_of(request).base_url}{path}"


# -- home -----------------------------------------------------------------------------------


def read_filters(request: Request, facets: views.Facets) -> views.Filters:
    """Only values the archive knows are kept, so a stale link shows everything, not an error."""
    params = request.query_params
    series = params.get("series", "")
    year = params.get("year", "")
    person = params.get("person", "")
    tag = params.get("tag", "")
    return views.Filters(
        series=series if series in dict(facets.series) else "",
        year=year if is_count(year, max_digits=4) and int(year) in facets.years else "",
        person=person if person in dict(facets.people) else "",
        tag=next((t for t in facets.tags if t.lower() == tag.lower()), "") if tag else "",
    )


def series_counts(view: CatalogView) -> dict[str, int]:
    counts: dict[str, int] = {}
    for episode in view.published:
        counts[episode.series] = counts.get(episode.series, 0) + 1
    return counts


async def home(request: Request) -> Response:
    view = snapshot(request)
    facets = view.cached("pages:facets", lambda: views.Facets.of(view))
    filters = read_filters(request, facets)
    matching = [e for e in view.published if filters.matches(e)] if filters.active \
        else view.published
    page = page_number(request)
    counts = view.cached("pages:series-counts", lambda: series_counts(view))
    covers = views.series_covers(view)
    context = views.HomePage(
        heading="Recordings matching your filters" if filters.active else "Latest recordings",
        episodes=views.cards(view, page_slice(matching, page)),
        pagination=views.paginate("/", filters.params(), page, len(matching)),
        filters=filters.selects(facets),
        filtered=filters.active,
        series=[views.SeriesCard(f"/series/{s.slug}", s.title, counts[s.slug],
                                 _thumbnail(covers.get(s.slug)))
                for s in view.all_series if s.slug in counts],
    )
    return render(request, "home.html", page=context)


def _thumbnail(cover: views.Cover | None) -> views.Picture | None:
    return cover.picture("", views.THUMBNAIL_SIZE) if cover else None


# -- series and people -------------------------------------------------------------------------


async def series_page(request: Request) -> Response:
    view = snapshot(request)
    series = view.series(request.path_params["slug"])
    episodes = view.series_episodes(series.slug)
    page = page_number(request)
    path = f"/series/{series.slug}"
    url = absolute(request, path)
    publisher = settings_of(request).owner_name
    description = sanitise_html(series.description) if series.description else ""
    cover = views.series_cover(series)
    context = views.SeriesPage(
        title=series.title,
        description=Markup(description),
        picture=cover.picture(f"Artwork of {series.title}", views.PAGE_SIZE_ART, lazy=False)
        if cover else None,
        episodes=views.cards(view, page_slice(episodes, page)),
        pagination=views.paginate(path, {}, page, len(episodes)),
        subscribe=views.Subscribe(f"{url}/feed.xml", f"{series.title} (podcast feed)",
                                  series.apple_url, series.spotify_url),
        canonical=url,
        og={"og:type": "website", "og:title": series.title, "og:url": url,
            "og:description": _summary(description)},
        json_ld=views.json_ld({"@context": "https://schema.org",
                               **views.series_json_ld(series, url, publisher)}),
    )
    return render(request, "series.html", page=context)


async def person_page(request: Request) -> Response:
    view = snapshot(request)
    person = view.person(request.path_params["slug"])
    episodes = view.person_episodes(person.slug)
    page = page_number(request)
    path = f"/people/{person.slug}"
    url = absolute(request, path)
    context = views.PersonPage(
        name=person.name,
        affiliation=person.affiliation,
        roles=", ".join(role.capitalize() for role in person.roles),
        orcid=person.orcid,
        url=person.url,
        episodes=views.cards(view, page_slice(episodes, page)),
        pagination=views.paginate(path, {}, page, len(episodes)),
        subscribe=views.Subscribe(f"{url}/feed.xml", f"Recordings with {person.name}"),
        canonical=url,
        json_ld=views.json_ld(_person_page_ld(view, person, url)),
    )
    return render(request, "person.html", page=context)


def _person_page_ld(view: CatalogView, person: Any, url: str) -> dict[str, Any]:
    """schema.org Person for the person page, with the record's identifiers and image."""
    record = view.data.people.get(person.slug) or Person(
        name=person.name, orcid=person.orcid, url=person.url)
    found: dict[str, Any] = {"@context": "https://schema.org", "@type": "Person",
                             "@id": url, "url": url, "name": person.name,
                             **views.person_identifiers_ld(record)}
    if person.affiliation:
        found["affiliation"] = {"@type": "Organization", "name": person.affiliation}
    return found


def _summary(description_html: str, limit: int = 200) -> str:
    text = " ".join(html_to_text(description_html).split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


# -- search ---------------------------------------------------------------------------------------


def load_cues_for_index(transcripts: Transcripts) -> Any:
    def load(media_file: MediaFile) -> list[Cue]:
        return list(transcripts.load(media_file))

    return load


def sync_index(found: PageServices, view: CatalogView, store: ObjectStore) -> None:
    """Bring the index up to the snapshot (only changed episodes; `SearchIndex.for_host` started
    it from the bucket's snapshot); after a large change, leave a fresh snapshot there."""
    changed = found.index.sync(view.published, views.series_titles(view),
                               load_cues_for_index(found.transcripts), token=view,
                               as_of=view.updated_at, catalogue=view.data.guid)
    if changed >= OPTIMIZE_AFTER:
        # Pruned again if a delete or unpublish landed after this index was synced.
        save_snapshot(found.index, store,
                      lambda: {e.id for e in Catalog(store).refresh().published})


def run_search(request: Request, text: str, page: int) -> Any:
    view = snapshot(request)
    found = services(request)
    sync_index(found, view, request.app.state.archive.store)
    return view, found.index.search(text, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)


async def warm_up(app: Any) -> None:
    """At start-up, in the background: have the search index ready before the first query."""
    state = app.state
    found: PageServices = state.page_services
    view = state.archive.catalog.cached_view()
    try:
        await asyncio.to_thread(sync_index, found, view, state.archive.store)
    except ArchiveError as error:
        log.warning("search index not warmed up: %s", error)


async def search_page(request: Request) -> Response:
    text = " ".join(request.query_params.get("q", "").split())[:300]
    page = page_number(request)
    if not text:
        return render(request, "search.html", page=views.SearchPage("", [], None))
    view, results = await asyncio.to_thread(run_search, request, text, page)
    titles, covers = views.series_titles(view), views.series_covers(view)
    found = []
    for hit in results.hits:
        try:
            episode = view.episode(hit.episode_id)
        except NotFound:
            continue
        card = views.EpisodeCard.of(episode, titles, covers,
                                    lazy=len(found) >= views.EAGER_CARDS)
        found.append(_result(card, hit))
    pagination = views.paginate("/search", {"q": text}, page, results.total)
    return render(request, "search.html",
                  page=views.SearchPage(text, found, pagination, results.ranked))


def _result(card: views.EpisodeCard, hit: Any) -> views.SearchResult:
    moment = None if hit.moment is None else f"{card.href}#t={seconds_fragment(hit.moment)}"
    return views.SearchResult(
        card=card,
        href=card.href if hit.in_metadata or moment is None else moment,
        snippet=hit.snippet,
        moment_href=moment,
        moment_label=views.clock(hit.moment) if hit.moment is not None else "",
        moment_snippet=hit.moment_snippet,
    )


# -- episodes -------------------------------------------------------------------------------------


def published_episode(request: Request) -> Episode:
    episode = snapshot(request).episode_by_slug(request.path_params["slug"])
    if episode.audio is None:
        raise NotFound("There is no such recording.")
    return episode


def episode_cues(request: Request, episode: Episode) -> tuple[tuple[Cue, ...], str]:
    """The transcript's cues, and a note for the page when it cannot be shown."""
    transcript = episode.files.get("transcript")
    if transcript is None:
        return (), ""
    try:
        return services(request).transcripts.cues(transcript), ""
    except (ArchiveError, MediaError):
        return (), "The transcript cannot be shown just now; please try the download link."


def citation_source(request: Request, episode: Episode) -> citations.CitationSource:
    series = snapshot(request).series(episode.series)
    return citations.CitationSource.of(
        episode, series, url=absolute(request, f"/episodes/{episode.slug}"),
        publisher=settings_of(request).owner_name)


async def episode_page(request: Request) -> Response:
    episode = published_episode(request)
    cues, note = await asyncio.to_thread(episode_cues, request, episode)
    # In a thread: the CSL styles take tens of milliseconds of CPU to render.
    context = await asyncio.to_thread(build_episode_page, request, episode, cues, note)
    response = render(request, "episode.html", page=context, speeds=SPEEDS)
    if note:  # the transcript failed to load: try again next time
        response.headers["cache-control"] = "no-store"
    return response


def build_episode_page(request: Request, episode: Episode, cues: tuple[Cue, ...],
                       note: str) -> views.EpisodePage:
    view = snapshot(request)
    series = view.series(episode.series)
    canonical = absolute(request, f"/episodes/{episode.slug}")
    description = sanitise_html(episode.description) if episode.description else ""
    day = episode.date or episode.published_at.date()
    player = _player(episode)
    cover = views.media_path(episode.id, episode.files["cover"].filename) \
        if "cover" in episode.files else ""
    source = citation_source(request, episode)
    picture = views.episode_cover(episode) or views.series_cover(series)
    waveform = episode.files.get("waveform")
    return views.EpisodePage(
        id=episode.id,
        title=episode.title,
        date_iso=day.isoformat(),
        date_label=views.long_date(day),
        series=Link(f"/series/{series.slug}", series.title),
        speakers=tuple(views.SpeakerView.of(p) for p in episode.speakers),
        tags=tuple(Link(f"/?{urlencode({'tag': t})}", t) for t in episode.tags),
        licence=views.rights_link(episode, settings_of(request).licence)[1],
        licence_term=views.rights_link(episode, settings_of(request).licence)[0],
        event=episode.event if episode.event != episode.title else "",
        location=episode.location.name if episode.location else "",
        duration=views.duration_label(episode.duration),
        description=Markup(description),
        player=player,
        chapters=_chapters(episode),
        cues=_cues(cues),
        transcript_note=note,
        transcript=transcript_state(episode),
        downloads=_downloads(episode),
        citation=citing.panel(source, episode.slug, settings_of(request).citation_style),
        permalink=absolute(request, f"/e/{episode.id}"),
        canonical=canonical,
        cover=cover,
        og=_episode_og(request, episode, canonical, description, player, cover),
        json_ld=views.json_ld(_episode_json_ld(request, episode, series, canonical,
                                                description)),
        subscribe=views.Subscribe(absolute(request, f"/series/{series.slug}/feed.xml"),
                                  f"{series.title} (podcast feed)"),
        language=episode.language,
        picture=picture.picture(f"Artwork of {episode.title}", views.PAGE_SIZE_ART,
                                lazy=False) if picture else None,
        waveform=views.media_path(episode.id, waveform.filename) if waveform else "",
        duration_s=seconds_fragment(episode.duration) if episode.duration else "",
    )


def _chapters(episode: Episode) -> tuple[views.Timed, ...]:
    """Chapters with their ends filled in (the next chapter's start, or the recording's end)."""
    marks = episode.chapters
    ends = [m.start for m in marks[1:]] + [episode.duration or marks[-1].start] if marks else []
    return tuple(_timed(m.start, m.end if m.end is not None else end, m.title)
                 for m, end in zip(marks, ends, strict=True))


def _timed(start: float, end: float, text: str, speaker: str = "") -> views.Timed:
    return views.Timed(seconds_fragment(start), seconds_fragment(end), views.clock(start), text,
                       speaker)


def _cues(cues: tuple[Cue, ...]) -> tuple[views.Timed, ...]:
    """Cues for the page; a speaker's name is shown where the speaker changes."""
    timed, previous = [], None
    for cue in cues:
        shown = cue.speaker if cue.speaker and cue.speaker != previous else ""
        previous = cue.speaker or previous
        timed.append(_timed(cue.start, cue.end, cue.text, shown or ""))
    return tuple(timed)


CAUTIONS = {
    "automatic": "Automatic transcript: may contain errors.",
    "edited": "Automatic transcript, partly corrected by an editor: may still contain errors.",
}


def transcript_state(episode: Episode) -> views.TranscriptState:
    """Ready (with a caution until an editor has reviewed it), being prepared, or none."""
    if "transcript" in episode.files:
        provenance = episode.transcript_provenance
        caution = CAUTIONS.get(provenance.kind, "") if provenance else ""
        return views.TranscriptState("ready", caution, f"/episodes/{episode.slug}/transcript")
    if "transcribe" in episode.pending:
        return views.TranscriptState("preparing", poll=f"/api/episodes/{episode.id}")
    return views.TranscriptState("none")


def _player(episode: Episode) -> views.Player:
    main = episode.files.get("video") or episode.files["audio"]
    captions = episode.files.get("transcript")
    cover = episode.files.get("cover")
    return views.Player(
        element="video" if "video" in episode.files else "audio",
        src=views.media_path(episode.id, main.filename),
        content_type=main.content_type,
        poster=views.media_path(episode.id, cover.filename) if cover else "",
        captions=views.media_path(episode.id, captions.filename) if captions else "",
        language=episode.transcript_language or episode.language,
    )


def _size(media_file: MediaFile) -> str:
    size = float(media_file.size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


DOWNLOAD_LABELS = (
    ("audio", "Podcast file"),
    ("video", "Video"),
    ("transcript", "Transcript (WebVTT)"),
    ("transcript_srt", "Transcript (SubRip)"),
    ("transcript_source", "Transcript as supplied (SubRip)"),
    ("transcript_json", "Transcript (Podcasting 2.0 JSON)"),
    ("chapters", "Chapters (JSON)"),
    ("original", "Original recording, as received"),
)


def _downloads(episode: Episode) -> tuple[views.Download, ...]:
    found = []
    for role, label in DOWNLOAD_LABELS:
        media_file = episode.files.get(role)
        if media_file is not None:
            detail = f"{media_file.filename}, {_size(media_file)}"
            found.append(views.Download(views.media_path(episode.id, media_file.filename),
                                        label, detail))
    return tuple(found)


def _episode_og(request: Request, episode: Episode, url: str, description: str,
                player: views.Player, cover: str) -> dict[str, str]:
    tags = {
        "og:type": "video.other" if player.element == "video" else "music.song",
        "og:title": episode.title,
        "og:url": url,
        "og:description": _summary(description),
        "og:site_name": request.app.state.settings.site_title,
        f"og:{player.element}": absolute(request, player.src),
        f"og:{player.element}:type": player.content_type,
    }
    if cover:
        tags["og:image"] = absolute(request, cover)
    return tags


def _episode_json_ld(request: Request, episode: Episode, series: Any, url: str,
                     description: str) -> dict[str, Any]:
    settings = settings_of(request)
    main = episode.files.get("video") or episode.files["audio"]
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "PodcastEpisode",
        "@id": url,
        "url": url,
        "name": episode.title,
        "datePublished": (episode.date or episode.published_at.date()).isoformat(),
        "description": html_to_text(description),
        "inLanguage": episode.language,
        "partOfSeries": views.series_json_ld(series, absolute(request, f"/series/{series.slug}"),
                                             settings.owner_name),
        "associatedMedia": {
            "@type": "VideoObject" if "video" in episode.files else "AudioObject",
            "contentUrl": absolute(request, views.media_path(episode.id, main.filename)),
            "encodingFormat": main.content_type,
            "duration": views.iso_duration(main.duration),
        },
        "contributor": [_person_ld(request, p) for p in episode.speakers],
        "keywords": ", ".join(episode.tags),
        "publisher": {"@type": "Organization", "name": settings.owner_name},
    }
    licence = views.rights_link(episode, settings.licence)[1]
    if licence and licence.href:
        data["license"] = licence.href
    return data


def _person_ld(request: Request, person: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"@type": "Person", "name": person.name,
                             "url": absolute(request, f"/people/{person.slug}"),
                             **views.person_identifiers_ld(person)}
    if person.affiliation:
        found["affiliation"] = {"@type": "Organization", "name": person.affiliation}
    return found


async def transcript_page(request: Request) -> Response:
    """The transcript on a page of its own: for reading, printing and podcast apps that link
    to an HTML transcript."""
    episode = published_episode(request)
    if "transcript" not in episode.files:
        raise NotFound("This recording has no transcript yet.")
    cues, note = await asyncio.to_thread(episode_cues, request, episode)
    if note:
        raise NotFound(note)
    context = views.TranscriptPage(
        title=episode.title,
        episode=Link(f"/episodes/{episode.slug}", episode.title),
        cues=_cues(cues),
        transcript=transcript_state(episode),
        canonical=absolute(request, f"/episodes/{episode.slug}/transcript"),
        language=episode.transcript_language or episode.language,
    )
    return render(request, "transcript.html", page=context)


async def citation_file(request: Request) -> Response:
    """`/episodes/{slug}/cite.bib|.ris|.json`: a file a reference manager imports; with
    `?t=START,END` it cites that moment."""
    fmt = request.path_params["fmt"]
    if fmt not in CITATION_FORMATS:
        raise NotFound("There is no such citation format; try .bib, .ris or .json.")
    moment = citing.requested_moment(request)
    episode = published_episode(request)
    media_type, build = CITATION_FORMATS[fmt]
    body = build(citing.at_moment(citation_source(request, episode), moment))
    filename = f"{episode.slug}.{fmt}"
    return Response(body, media_type=media_type,
                    headers={"content-disposition": f'attachment; filename="{filename}"'})


async def permalink(request: Request) -> Response:
    """`/e/{id}`: the permanent address; it follows the episode if its slug ever changes.
    `?t=START[,END]` becomes the episode page's media fragment (`#t=…`)."""
    moment = citing.requested_moment(request)
    episode = snapshot(request).episode(request.path_params["episode_id"])
    fragment = citing.fragment_of(moment) if moment else ""
    return RedirectResponse(f"/episodes/{episode.slug}{fragment}", status_code=302)


routes: list[BaseRoute] = [
    Route("/", cached_page(home), methods=["GET", "HEAD"]),
    Route("/search", search_page, methods=["GET", "HEAD"]),
    Route("/series/{slug}", cached_page(series_page), methods=["GET", "HEAD"]),
    Route("/people/{slug}", cached_page(person_page), methods=["GET", "HEAD"]),
    Route("/episodes/{slug}", cached_page(episode_page), methods=["GET", "HEAD"]),
    Route("/episodes/{slug}/cite.{fmt}", citation_file, methods=["GET", "HEAD"]),
    Route("/episodes/{slug}/transcript", cached_page(transcript_page), methods=["GET", "HEAD"]),
    Route("/e/{episode_id}", permalink, methods=["GET", "HEAD"]),
    *artwork.routes,  # the pages' pictures: cover renditions, icons, the web app manifest
]
