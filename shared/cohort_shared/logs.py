"""Logging set-up shared by the services: one line per record, level from settings."""

from __future__ import annotations

import logging


def configure_logging(level: str, service: str) -> logging.Logger:
    logging.basicConfig(
        level=level.upper(),
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))
    return logging.getLogger(service)
