"""Listening statistics for editors (`/stats`, its CSV), for scripts (`/api/stats`), and the
public account of how they are counted (`/stats/about`).

Reports are built in a worker thread (they list the bucket and may fetch a few roll-ups);
templates get finished data: the charts as SVG markup and the same numbers as tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from archive.stats.cache import cache_folder
from archive.stats.export import EpisodeRow, episode_rows, report_json, to_csv
from archive.stats.query import Filters, Report, build_report, make_filters, method_label
from archive.web.charts import bar_chart, column_chart
from archive.web.editor import editor_for_page, page, to_login
from archive.web.guard import token_editor
from archive.web.http import content_disposition

DAILY_UP_TO = 92  # longer ranges are charted by month
TOP = 10


@dataclass(frozen=True)
class Period:
    label: str
    downloads: int


@dataclass(frozen=True)
class StatsPage:
    """Everything /stats shows, finished."""

    since: str
    until: str
    series: str
    episode: str
    scope: str  # "the whole archive", a series' or an episode's title
    series_options: list[tuple[str, str]]
    total: int
    period_name: str  # "day" or "month"
    periods: list[Period]
    over_time: Markup
    top: list[EpisodeRow]
    top_chart: Markup
    apps: list[tuple[str, str, int]]
    apps_chart: Markup
    devices: list[tuple[str, str, int]]
    devices_chart: Markup
    methods: list[str]
    csv_url: str
    redirect_mode: bool
    quick_ranges: list[tuple[str, str]] = field(default_factory=list)


# -- input ---------------------------------------------------------------------------------------


def parse_filters(params: QueryParams) -> Filters:
    """since/until as YYYY-MM-DD (default: the last 30 days), series slug, episode id."""
    return make_filters(params.get("since"), params.get("until"), params.get("series"),
                        params.get("episode"))


async def _report(request: Request, filters: Filters) -> Report:
    archive = request.app.state.archive
    return await run_in_threadpool(build_report, archive.store,
                                   cache_folder(archive.settings.data_dir), filters)


# -- pages ---------------------------------------------------------------------------------------


async def stats_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    filters = parse_filters(request.query_params)
    report = await _report(request, filters)
    view = request.app.state.archive.catalog.cached_view()
    rows = episode_rows(report, view)
    context = page_data(report, rows, _scope(view, filters), view.all_series,
                        bool(request.app.state.archive.settings.media_url),
                        str(request.url.query))
    return page(request, "stats.html", {"page": context})


def page_data(report: Report, rows: list[EpisodeRow], scope: str, all_series: list[Any],
              redirect_mode: bool, query: str) -> StatsPage:
    filters = report.filters
    periods = _periods(report.days)
    period_name = "day" if len(report.days) <= DAILY_UP_TO else "month"
    top = rows[:TOP]
    top_points = [(row.title or row.id, row.downloads) for row in top]
    today = datetime.now(UTC).date()
    return StatsPage(
        since=filters.since.isoformat(), until=filters.until.isoformat(),
        series=filters.series or "", episode=filters.episode or "", scope=scope,
        series_options=[(s.slug, s.title) for s in all_series],
        total=report.total, period_name=period_name, periods=periods,
        over_time=column_chart(f"Downloads per {period_name}, {scope}, from {filters.since} "
                               f"to {filters.until}", [(p.label, p.downloads) for p in periods]),
        top=top, top_chart=bar_chart("Top episodes by downloads", top_points),
        apps=report.apps[:TOP], apps_chart=bar_chart(
            "Downloads by app", [(a, n) for a, _, n in report.apps[:TOP]]),
        devices=report.devices[:TOP], devices_chart=bar_chart(
            "Downloads by platform", [(d, n) for d, _, n in report.devices[:TOP]]),
        methods=[method_label(m) for m in report.methods],
        csv_url="/stats/downloads.csv" + (f"?{query}" if query else ""),
        redirect_mode=redirect_mode,
        quick_ranges=[(label, f"?since={(today - timedelta(days=n - 1)).isoformat()}"
                              f"&until={today.isoformat()}")
                      for label, n in (("Last 7 days", 7), ("Last 30 days", 30),
                                       ("Last 365 days", 365))],
    )


def _periods(days: list[tuple[date, int]]) -> list[Period]:
    if len(days) <= DAILY_UP_TO:
        return [Period(day.isoformat(), count) for day, count in days]
    months: dict[str, int] = {}
    for day, count in days:
        months[day.strftime("%Y-%m")] = months.get(day.strftime("%Y-%m"), 0) + count
    return [Period(month, count) for month, count in months.items()]


def _scope(view: Any, filters: Filters) -> str:
    from archive.errors import NotFound

    try:
        if filters.episode:
            return f"episode “{view.episode(filters.episode, include_drafts=True).title}”"
        if filters.series:
            return f"series “{view.series(filters.series).title}”"
    except NotFound:
        return "an episode or series no longer in the catalogue"
    return "the whole archive"


async def stats_csv(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    filters = parse_filters(request.query_params)
    report = await _report(request, filters)
    rows = episode_rows(report, request.app.state.archive.catalog.cached_view())
    name = f"downloads-{filters.since}-{filters.until}.csv"
    return Response(to_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": content_disposition(name),
                             "Cache-Control": "no-store"})


async def stats_api(request: Request) -> Response:
    await run_in_threadpool(token_editor, request)
    filters = parse_filters(request.query_params)
    report = await _report(request, filters)
    rows = episode_rows(report, request.app.state.archive.catalog.cached_view())
    return JSONResponse(report_json(report, rows), headers={"Cache-Control": "no-store"})


async def about_page(request: Request) -> Response:
    settings = request.app.state.archive.settings
    mode = ("presigned" if settings.presigned_media else "redirect" if settings.media_url
            else "proxy")
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, "stats_about.html", {"mode": mode},
        headers={"Cache-Control": "public, max-age=3600"})


routes: list[BaseRoute] = [
    Route("/stats", stats_page, methods=["GET", "HEAD"]),
    Route("/stats/downloads.csv", stats_csv, methods=["GET", "HEAD"]),
    Route("/stats/about", about_page, methods=["GET", "HEAD"]),
    Route("/api/stats", stats_api, methods=["GET", "HEAD"]),
]
