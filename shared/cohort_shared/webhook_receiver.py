"""A real HTTP receiver of webhooks for tests, the benchmark and the fault suite: it checks
every delivery's signature with the `standardwebhooks` package (as a downstream team would)
and records what came, per hook path (`/hooks/<name>`).

In a test: `Receiver()`, `expect(name, secret)`, `await start()`, read `received[name]`.
As a process (`python -m cohort_shared.webhook_receiver --port N`) it serves the same plus
`PUT /_hooks/<name>` (secret, status, delay) and `GET /_hooks/<name>` (what it received),
so a benchmark or the fault suite can measure without sharing a process with it.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import orjson
from aiohttp import web


@dataclass(frozen=True)
class Received:
    webhook_id: str
    user_id: str
    event: dict
    at: float


@dataclass
class Hook:
    secret: str
    status: int = 200
    delay: float = 0.0
    verifier: object = field(default=None, repr=False)


class Receiver:
    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}
        self.received: dict[str, list[Received]] = defaultdict(list)
        self.refused_signatures = 0
        self.requests: dict[str, int] = defaultdict(int)
        self._runner: web.AppRunner | None = None
        self.url = ""

    def expect(self, name: str, secret: str, status: int = 200, delay: float = 0.0) -> None:
        from standardwebhooks.webhooks import Webhook

        self.hooks[name] = Hook(secret, status, delay, Webhook(secret))

    def answer(self, name: str, status: int, delay: float = 0.0) -> None:
        self.hooks[name].status, self.hooks[name].delay = status, delay

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post("/hooks/{name}", self._on_delivery)
        app.router.add_put("/_hooks/{name}", self._on_configure)
        app.router.add_get("/_hooks/{name}", self._on_report)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def hook_url(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    async def _on_delivery(self, request: web.Request) -> web.Response:
        from standardwebhooks.webhooks import WebhookVerificationError

        name = request.match_info["name"]
        body = await request.read()
        self.requests[name] += 1
        hook = self.hooks.get(name)
        if hook is None:
            return web.Response(status=404)
        try:
            payload = hook.verifier.verify(body, dict(request.headers))
        except WebhookVerificationError:
            self.refused_signatures += 1
            return web.Response(status=401)
        if hook.delay:
            await asyncio.sleep(hook.delay)
        if 200 <= hook.status < 300:
            data = payload["data"]
            self.received[name].append(Received(request.headers["webhook-id"], data["user_id"], data, time.time()))
        return web.Response(status=hook.status)

    async def _on_configure(self, request: web.Request) -> web.Response:
        settings = await request.json()
        self.expect(request.match_info["name"], settings["secret"], settings.get("status", 200), settings.get("delay", 0))
        return web.Response(status=204)

    async def _on_report(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        got = self.received.get(name, [])
        report = {"requests": self.requests.get(name, 0), "refused_signatures": self.refused_signatures,
                  "received": [[r.webhook_id, r.user_id, r.event["occurred_at"], r.at] for r in got]}
        return web.Response(body=orjson.dumps(report), content_type="application/json")


async def _serve(host: str, port: int) -> None:
    receiver = Receiver()
    await receiver.start(host, port)
    print(f"receiving on {receiver.url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(_serve(args.host, args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
