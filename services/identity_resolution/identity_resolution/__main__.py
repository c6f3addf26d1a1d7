"""`python -m identity_resolution`: the stream processor and the HTTP API, on uvicorn with uvloop."""

import uvicorn
from cohort_shared.logs import configure_logging

from .app import create_app
from .entrypoints.stream import SERVICE
from .settings import IdentitySettings


def main() -> None:
    settings = IdentitySettings()
    configure_logging(settings.log_level, SERVICE)
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
        log_level=settings.log_level.lower(), access_log=False,
    )


if __name__ == "__main__":
    main()
