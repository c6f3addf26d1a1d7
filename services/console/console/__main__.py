"""`python -m console`: serve the operator console with uvicorn on uvloop."""

from cohort_shared.logs import configure_logging
from cohort_shared.serving import serve

from .app import create_app
from .settings import ConsoleSettings


def main() -> None:
    settings = ConsoleSettings()
    configure_logging(settings.log_level, "console")
    serve(create_app(settings), settings.host, settings.port, settings.log_level)


if __name__ == "__main__":
    main()
