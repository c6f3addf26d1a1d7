"""`python -m segment_store`: serve the segment-store API with uvicorn on uvloop, consuming its topics."""

import uvicorn
from cohort_shared.logs import configure_logging

from .app import create_app
from .settings import SegmentSettings


def main() -> None:
    settings = SegmentSettings()
    configure_logging(settings.log_level, "segment-store")
    uvicorn.run(
        create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
        log_level=settings.log_level.lower(), access_log=False,
    )


if __name__ == "__main__":
    main()
