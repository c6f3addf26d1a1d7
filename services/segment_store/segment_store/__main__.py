"""`python -m segment_store`: serve the segment-store API with uvicorn on uvloop, consuming its topics."""

from cohort_shared.logs import configure_logging
from cohort_shared.serving import serve

from .app import create_app
from .settings import SegmentSettings


def main() -> None:
    settings = SegmentSettings()
    configure_logging(settings.log_level, "segment-store")
    serve(create_app(settings), settings.host, settings.port, settings.log_level)


if __name__ == "__main__":
    main()
