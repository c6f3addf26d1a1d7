"""`python -m identity_resolution`: the stream processor and the HTTP API, on uvicorn with uvloop."""

from cohort_shared.logs import configure_logging
from cohort_shared.serving import serve

from .app import create_app
from .entrypoints.stream import SERVICE
from .settings import IdentitySettings


def main() -> None:
    settings = IdentitySettings()
    configure_logging(settings.log_level, SERVICE)
    serve(create_app(settings), settings.host, settings.port, settings.log_level)


if __name__ == "__main__":
    main()
