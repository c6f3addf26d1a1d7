"""Running a service's app under uvicorn so that a dead stream processor ends the process.

A processor that cannot go on (`TransactionalProcessor.on_dead`) calls `request_exit` on
the app: uvicorn shuts down cleanly and the process exits with `EXIT_PROCESSOR_DEAD`, so any
supervisor (systemd, Kubernetes, docker's restart policy, `make up`'s) starts it again.
"""

from __future__ import annotations

import gc
import sys

import uvicorn
from fastapi import FastAPI

EXIT_PROCESSOR_DEAD = 70  # EX_SOFTWARE
GC_THRESHOLDS = (50_000, 20, 20)
"""Python's cyclic collector runs every 700 allocations by default and walks what survived;
a stream service allocates thousands of short-lived objects per batch (decoded records,
rows, replies) beside a large live heap, and spent a third of its time collecting
(README, Performance). Nothing here builds reference cycles on the hot path, so the
collector runs far less often; memory is still freed by reference counting."""


def tune_gc() -> None:
    """Freeze what start-up allocated (imports, settings, the app) out of every collection and
    collect less often (GC_THRESHOLDS)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def request_exit(app: FastAPI, code: int) -> None:
    """Ask the server running `app` to stop, then exit with `code`."""
    app.state.exit_code = code
    server = getattr(app.state, "server", None)
    if server is not None:
        server.should_exit = True


def serve(app: FastAPI, host: str, port: int, log_level: str) -> None:
    """Serve `app` until stopped; exit with the code the app asked for, if any."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, loop="uvloop",
                                           log_level=log_level.lower(), access_log=False,
                                           log_config=None))  # uvicorn's lines go through configure_logging's JSON
    app.state.server = server
    tune_gc()
    server.run()
    sys.exit(getattr(app.state, "exit_code", 0))
