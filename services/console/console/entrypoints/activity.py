"""Usage over time, webhooks with their delivery state, and the live feed of membership changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from ..adapters.operator_api import NotAvailable, Unreachable, Workspace
from ..domain.usage_chart import bucket_usage, chart
from .web import console, guard, render, workspace

router = APIRouter(prefix="/w/{ws}", dependencies=[Depends(guard)])
SPANS = {48: "last 48 hours", 24 * 14: "last 14 days", 24 * 90: "last 90 days"}
HEARTBEAT_POLLS = 15  # quiet polls (about a second each) between heartbeats


@router.get("/usage")
async def usage(request: Request, span: int = Query(48), w: Workspace = Depends(workspace)) -> Response:
    """Data points (effective cohort-import changes) in total and over time."""
    span = span if span in SPANS else 48
    total = await w.usage()
    try:
        hours, unavailable = await w.usage_history(span), None
    except NotAvailable:
        hours, unavailable = [], "usage over time is not available from this segment-store"
    now = datetime.fromtimestamp(console(request).clock(), tz=UTC)
    series, period = bucket_usage(hours, now, span)
    return render(request, "usage.html", total=total, plot=chart(series, period), span=span, spans=SPANS,
                  unavailable=unavailable)


@router.get("/webhooks")
async def webhooks(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """The workspace's webhooks with delivered, pending and failed counts (where delivery runs)."""
    try:
        listed, unavailable = await w.webhooks(), None
    except (NotAvailable, Unreachable) as error:
        listed, unavailable = [], error.message
    return render(request, "webhooks.html", webhooks=listed, unavailable=unavailable)


@router.get("/feed")
async def feed_page(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """The live feed page; its script reads `/feed/events`."""
    return render(request, "feed.html")


@router.get("/feed/events")
async def feed_events(request: Request, w: Workspace = Depends(workspace)) -> Response:
    """Server-sent events: one `change` event per committed membership change of the workspace."""
    c = console(request)
    if c.open_feeds >= c.settings.max_feeds:
        return Response("too many live feeds open; close one and retry", status_code=503,
                        headers={"Retry-After": "5"})
    return StreamingResponse(_stream(request, w.ws), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(request: Request, ws: str) -> AsyncIterator[bytes]:
    """`ready` once the consumer is in place, then the changes, with a comment line as a
    heartbeat when none came for a while (which is also when a closed tab is noticed)."""
    c = console(request)
    c.open_feeds += 1
    follow = c.feed.follow(ws)
    try:
        yield b": connected\n\n"
        ready, quiet = False, 0
        while not await request.is_disconnected():
            event = await anext(follow, StopAsyncIteration)
            if event is StopAsyncIteration:
                return
            if event is not None:
                yield b"event: change\ndata: " + orjson.dumps(event) + b"\n\n"
            elif not ready:
                ready = True
                yield b"event: ready\ndata: {}\n\n"
            else:
                quiet += 1
                if quiet % HEARTBEAT_POLLS == 0:
                    yield b": heartbeat\n\n"
    finally:
        c.open_feeds -= 1
        await follow.aclose()
