"""`python -m delivery`: serve the delivery API with uvicorn on uvloop; its lifespan runs the
faust app that consumes `membership.changes` and the dispatcher that sends webhooks."""

from cohort_shared.logs import configure_logging
from cohort_shared.serving import serve

from .app import create_app
from .settings import DeliverySettings


def main() -> None:
    settings = DeliverySettings()
    configure_logging(settings.log_level, "delivery")
    serve(create_app(settings), settings.host, settings.port, settings.log_level)


if __name__ == "__main__":
    main()
