"""delivery's HTTP client against real local servers: the signing receiver the end-to-end
tests use (aiohttp, verifying every signature) and a raw socket server for what a receiver
may do to a connection (chunked bodies, closing after an answer, closing a kept-alive one,
never answering)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest
from cohort_shared.webhook_receiver import Receiver
from delivery.adapters.http_sender import REFUSED, HttpSender, destination_of
from delivery.domain.signing import Signer

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_the_request_head_names_the_host_path_and_credentials_of_the_url():
    head = destination_of("https://bob:s%40cret@hooks.example.com:8443/in/x?team=7").head.decode()
    assert head.startswith("POST /in/x?team=7 HTTP/1.1\r\nHost: hooks.example.com:8443\r\n")
    assert "Authorization: Basic Ym9iOnNAY3JldA==\r\n" in head  # bob:s@cret
    plain = destination_of("http://[::1]/")
    assert (plain.tls, plain.host, plain.port) == (False, "::1", 80) and b"Host: [::1]\r\n" in plain.head
    for bad in ("ftp://x/", "http:///path", "http://x/a\r\nX-Injected: 1"):
        with pytest.raises(ValueError):
            destination_of(bad)


async def test_signed_posts_reach_the_verifying_receiver_on_one_kept_alive_connection():
    receiver = Receiver()
    receiver.expect("a", SECRET)
    receiver.expect("broken", SECRET, status=500)
    await receiver.start()
    sender = HttpSender(allow_private=True, timeout_seconds=5)
    await sender.start()
    signer = Signer(SECRET)
    try:
        async def post(name: str, n: int) -> tuple:
            body = b'{"type":"membership.changed","data":{"user_id":"u%d","occurred_at":"x"}}' % n
            return await sender.post(receiver.hook_url(name), body, signer.headers(f"evt_{n}", body, datetime.now(UTC)))

        answers = await asyncio.gather(*(post("a", n) for n in range(200)))
        assert set(answers) == {(200, None)}
        assert sorted(r.webhook_id for r in receiver.received["a"]) == sorted(f"evt_{n}" for n in range(200))
        assert receiver.refused_signatures == 0
        opened = idle_connections(sender)
        assert 0 < opened <= 200  # every connection went back to the pool
        await asyncio.gather(*(post("a", n) for n in range(200, 300)))
        assert idle_connections(sender) == opened  # and was used again
        assert await post("broken", 1) == (500, None)
    finally:
        await sender.stop()
        await receiver.stop()


@asynccontextmanager
async def raw_server(answer) -> AsyncIterator[tuple[HttpSender, str]]:
    """A server whose `answer(reader, writer)` handles each connection as it likes, and a
    started sender to call it with."""
    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    sender = HttpSender(allow_private=True, timeout_seconds=5)
    await sender.start()
    try:
        yield sender, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    finally:
        await sender.stop()
        server.close()


def idle_connections(sender: HttpSender) -> int:
    return sum(len(idle) for idle in sender._idle.values())


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    return head + await reader.readexactly(length)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 202 Accepted\r\nContent-Length: 3\r\n\r\nyes",
])
async def test_answers_of_every_framing_are_read_whole_and_the_connection_kept(reply):
    async def answer(reader, writer):
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(reply)
            await writer.drain()
        writer.close()

    async with raw_server(answer) as (sender, url):
        expected = int(reply.split()[1])
        assert [await sender.post(url, b"{}", {}) for _ in range(3)] == [(expected, None)] * 3
        assert idle_connections(sender) == 1


async def test_a_body_ended_by_closing_and_a_kept_alive_connection_the_server_closed_both_work():
    served = []

    async def answer(reader, writer):
        await read_request(reader)
        served.append(1)
        if len(served) == 1:  # keep-alive answer, then the server drops the idle connection
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
        else:  # HTTP/1.0 style: the body runs to the close
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe end")
            await writer.drain()
        writer.close()

    async with raw_server(answer) as (sender, url):
        assert await sender.post(url, b"{}", {}) == (200, None)
        await asyncio.sleep(0.2)  # the server has closed the kept-alive connection
        assert await sender.post(url, b"{}", {}) == (200, None)
        assert len(served) == 2 and idle_connections(sender) == 0


async def test_no_answer_no_listener_and_refused_addresses_are_reported_without_the_url():
    async def silent(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)

    strict = HttpSender(allow_private=False, timeout_seconds=1)
    await strict.start()
    try:
        async with raw_server(silent) as (sender, url):
            sender._timeout_seconds = 0.3
            assert await sender.post(url, b"{}", {}) == (None, "no answer within 0.3 s")
        assert await sender.post(url, b"{}", {}) == (None, "cannot connect")  # the server is gone
        assert await strict.post(url, b"{}", {}) == (None, REFUSED)
        assert await strict.post("http://localhost:9/hook", b"{}", {}) == (None, REFUSED)  # a name resolving to loopback
        assert await sender.post("http://127.0.0.1:notaport/", b"{}", {}) == (None, "invalid URL")
    finally:
        await strict.stop()
