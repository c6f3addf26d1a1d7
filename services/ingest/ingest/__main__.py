"""`python -m ingest`: serve the ingest API with uvicorn on uvloop."""

import uvicorn
from cohort_shared.logs import configure_logging

from .app import create_app
from .settings import IngestSettings


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, "ingest")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
        log_level=settings.log_level.lower(), access_log=False,
    )


if __name__ == "__main__":
    main()
