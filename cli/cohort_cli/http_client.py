"""HTTP to the three services: one error type that carries the server's `message`, and the
retrying send the producer and the profile loader share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from .backoff import RetryPolicy, is_retryable, parse_retry_after

Sleep = Callable[[float], Awaitable[None]]
REQUEST_TIMEOUT = httpx.Timeout(30.0, connect=5.0)


class ApiError(RuntimeError):
    """A request that did not succeed: the server's status and `message`, or why none came."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.message, self.status, self.attempts = message, status, attempts

    def __str__(self) -> str:
        prefix = f"HTTP {self.status}" if self.status is not None else "no answer"
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{prefix}: {self.message}{tries}"


def response_message(response: httpx.Response) -> str:
    """The JSON body's `message` (docs/overview.md: every error carries one), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    text = "" if isinstance(body, dict) else response.text.strip()
    return text[:300] or response.reason_phrase or "no message"


def json_or_empty(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        raise ApiError("the answer is not JSON", response.status_code) from None


def checked(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; any other answer raises ApiError with the server's message."""
    if not response.is_success:
        raise ApiError(response_message(response), response.status_code)
    return json_or_empty(response)


@dataclass(frozen=True)
class Sent:
    body: Any
    attempts: int

    @property
    def retries(self) -> int:
        return self.attempts - 1


async def send_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    json: Any,
    policy: RetryPolicy,
    sleep: Sleep = asyncio.sleep,
) -> Sent:
    """Send until a 2xx; 5xx, 429 and connection errors are retried per `policy`; any other
    answer raises at once (the same request would fail the same way)."""
    attempts = 0
    while True:
        attempts += 1
        retry_after: float | None = None
        try:
            response = await client.request(method, url, json=json)
        except httpx.TransportError as error:
            failure = ApiError(f"cannot reach {client.base_url} ({type(error).__name__})", None, attempts)
        else:
            if response.is_success:
                return Sent(json_or_empty(response), attempts)
            failure = ApiError(response_message(response), response.status_code, attempts)
            if not is_retryable(response.status_code):
                raise failure
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        if policy.gives_up(attempts, retry_after):
            raise failure
        await sleep(policy.delay(attempts, retry_after))


async def run_bounded(items: list[Any], concurrency: int, send: Callable[[Any], Awaitable[None]]) -> None:
    """`send` every item with at most `concurrency` in flight; the first failure cancels the
    rest and is raised as itself."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await send(queue.get_nowait())

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, min(concurrency, len(items)))):
                group.create_task(worker())
    except ExceptionGroup as failures:
        raise failures.exceptions[0] from None
