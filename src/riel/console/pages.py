"""The web console: server-rendered pages (jinja2, autoescaped) and the JSON their scripts poll.

Pages: ``/`` overview (throughput graph, topics, sizes, connections, groups), ``/topics/{topic}``
(partitions, configs, message browser with live tail, integrity of append-only topics), ``/groups`` and
``/groups/{group}`` (members, assignments, lag per partition with a chart). JSON under ``/api/``. Static
files (our own CSS and JavaScript, no third-party code) under ``/static/``. Everything works offline.

Handlers run on the broker's event loop: they read in-memory state, read at most a few MiB of log, and
push anything slower (decoding, hash-chain verification) to a worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from riel.console.browse import Page, offset_for_time, read_page
from riel.console.integrity import IntegrityChecker, TopicIntegrity
from riel.console.render import Format, human_bytes, iso_ms, parse_format, parse_time_ms
from riel.console.throughput import ThroughputSampler
from riel.console.views import (
    GroupView,
    TopicView,
    all_topics,
    connections,
    group_summaries,
    group_view,
    topic_view,
)
from riel.server.app import RielServer

HERE: Final = Path(__file__).parent
DEFAULT_LIMIT: Final = 20


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["bytes"] = human_bytes
    env.filters["iso_ms"] = iso_ms
    return env


class Console:
    def __init__(self, server: RielServer) -> None:
        self.server = server
        self.env = _environment()
        self._sampler: ThroughputSampler | None = None
        self.integrity = IntegrityChecker(server.log_manager)

    @property
    def sampler(self) -> ThroughputSampler:
        if self._sampler is None:
            self._sampler = ThroughputSampler(self.server.stats)
        return self._sampler

    def page(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status)

    def not_found(self, title: str, message: str) -> HTMLResponse:
        return self.page("not_found.html", 404, title=title, message=message, nav="")

    # ------------------------------------------------------------------------------------- pages

    async def overview(self, request: Request) -> Response:
        topics = all_topics(self.server)
        self.sampler.history()  # start sampling now, so the graph has points by the first poll
        return self.page(
            "overview.html",
            nav="overview",
            title="Overview",
            topics=topics,
            total_size=sum(t.size_bytes for t in topics),
            total_messages=sum(t.messages for t in topics),
            connections=connections(self.server),
            groups=group_summaries(self.server),
            integrity=self.integrity.last,
        )

    async def topic(self, request: Request) -> Response:
        name = request.path_params["topic"]
        view = topic_view(self.server, name)
        if view is None:
            return self._unknown_topic(name)
        query = request.query_params
        fmt = parse_format(query.get("format"))
        limit = _int(query.get("limit"), DEFAULT_LIMIT)
        partition = _int(query.get("partition"), 0)
        browse_error: str | None = None
        page: Page | None = None
        if not 0 <= partition < len(view.partitions):
            browse_error = f"topic {name!r} has no partition {partition} (it has {len(view.partitions)})"
            partition = 0
        else:
            page, browse_error = await self._browse(
                view, partition, query.get("offset"), query.get("time"), fmt, limit
            )
        integrity: TopicIntegrity | None = self.integrity.last.get(name)
        if view.append_only and query.get("verify"):
            integrity = await self.integrity.verify(name, len(view.partitions))
        return self.page(
            "topic.html",
            nav="topics",
            title=f"Topic {name}",
            topic=view,
            partition=partition,
            fmt=fmt,
            limit=limit,
            offset_value=query.get("offset", ""),
            time_value=query.get("time", ""),
            page=page,
            browse_error=browse_error,
            integrity=integrity,
        )

    async def _browse(
        self,
        view: TopicView,
        partition: int,
        offset_text: str | None,
        time_text: str | None,
        fmt: Format,
        limit: int,
    ) -> tuple[Page | None, str | None]:
        plog = self.server.log_manager.partition(view.name, partition)
        if plog is None:
            return None, f"partition {partition} is offline"
        if time_text:
            timestamp = parse_time_ms(time_text)
            if timestamp is None:
                return None, f"cannot read {time_text!r} as a time (ISO 8601 or milliseconds since the epoch)"
            offset = offset_for_time(plog, timestamp)
        elif offset_text:
            try:
                offset = int(offset_text)
            except ValueError:
                return None, f"offset {offset_text!r} is not a number"
            if offset < 0:  # -N: the last N messages
                offset = max(plog.log_start_offset, plog.high_watermark + offset)
        else:
            offset = plog.log_start_offset
        return await read_page(plog, offset, limit, fmt), None

    async def groups(self, request: Request) -> Response:
        groups = group_summaries(self.server)
        return self.page("groups.html", nav="groups", title="Consumer groups", groups=groups)

    async def group(self, request: Request) -> Response:
        name = request.path_params["group"]
        view = group_view(self.server, name)
        if view is None:
            return self.not_found(
                "Unknown consumer group",
                f"There is no consumer group named {name!r}: no member has joined it and it has no "
                "committed offsets.",
            )
        chart = _lag_chart(view)
        return self.page("group.html", nav="groups", title=f"Group {name}", group=view, chart=chart)

    def _unknown_topic(self, name: str) -> HTMLResponse:
        return self.not_found("Unknown topic", f"There is no topic named {name!r} on this broker.")

    # -------------------------------------------------------------------------------------- JSON

    async def api_throughput(self, request: Request) -> Response:
        return JSONResponse({"interval_s": 1, "rates": [r.as_json() for r in self.sampler.history()]})

    async def api_overview(self, request: Request) -> Response:
        return JSONResponse(
            {
                "topics": [t.as_json() for t in all_topics(self.server)],
                "connections": [c.peer for c in connections(self.server)],
                "groups": [
                    {"group": g.group, "state": g.state, "members": g.members, "total_lag": g.total_lag}
                    for g in group_summaries(self.server)
                ],
            }
        )

    async def api_topic(self, request: Request) -> Response:
        name = request.path_params["topic"]
        view = topic_view(self.server, name)
        if view is None:
            return _json_error(404, f"there is no topic named {name!r}")
        return JSONResponse(view.as_json())

    async def api_messages(self, request: Request) -> Response:
        name = request.path_params["topic"]
        view = topic_view(self.server, name)
        if view is None:
            return _json_error(404, f"there is no topic named {name!r}")
        try:
            partition = int(request.path_params["partition"])
        except ValueError:
            return _json_error(400, "the partition must be a number")
        if not 0 <= partition < len(view.partitions):
            return _json_error(404, f"topic {name!r} has no partition {partition}")
        query = request.query_params
        page, error = await self._browse(
            view,
            partition,
            query.get("offset"),
            query.get("time"),
            parse_format(query.get("format")),
            _int(query.get("limit"), DEFAULT_LIMIT),
        )
        if page is None:
            return _json_error(400, error or "cannot read the partition")
        return JSONResponse(page.as_json())

    async def api_verify(self, request: Request) -> Response:
        name = request.path_params["topic"]
        view = topic_view(self.server, name)
        if view is None:
            return _json_error(404, f"there is no topic named {name!r}")
        if not view.append_only:
            return _json_error(
                400, f"topic {name!r} is not append-only (riel.append.only=false): it has no hash chain"
            )
        result = await self.integrity.verify(name, len(view.partitions))
        return JSONResponse(result.as_json())

    async def api_groups(self, request: Request) -> Response:
        return JSONResponse(
            [
                {
                    "group": g.group,
                    "state": g.state,
                    "protocol_type": g.protocol_type,
                    "members": g.members,
                    "partitions": g.partitions,
                    "total_lag": g.total_lag,
                }
                for g in group_summaries(self.server)
            ]
        )

    async def api_group(self, request: Request) -> Response:
        name = request.path_params["group"]
        view = group_view(self.server, name)
        if view is None:
            return _json_error(404, f"there is no consumer group named {name!r}")
        return JSONResponse(view.as_json())


def _json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _int(text: str | None, default: int) -> int:
    if text is None or not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        return default


def _lag_chart(view: GroupView) -> list[dict[str, Any]]:
    """Horizontal bars, one per partition: label, lag and width as a percentage of the largest lag."""
    biggest = max((row.lag or 0 for row in view.lags), default=0)
    return [
        {
            "label": f"{row.topic}/{row.partition}",
            "lag": row.lag,
            "percent": 0.0 if not biggest or row.lag is None else 100.0 * row.lag / biggest,
        }
        for row in view.lags
    ]


def routes(server: RielServer) -> list[BaseRoute]:
    console = Console(server)
    return [
        Route("/", console.overview),
        Route("/topics/{topic}", console.topic),
        Route("/groups", console.groups),
        Route("/groups/{group:path}", console.group),
        Route("/api/overview", console.api_overview),
        Route("/api/throughput", console.api_throughput),
        Route("/api/topics/{topic}", console.api_topic),
        Route("/api/topics/{topic}/{partition}/messages", console.api_messages),
        Route("/api/topics/{topic}/verify", console.api_verify, methods=["POST"]),
        Route("/api/groups", console.api_groups),
        Route("/api/groups/{group:path}", console.api_group),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
