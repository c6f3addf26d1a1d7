"""The environment names each service reads, taken from its settings class: the services
ignore names they do not know (extra="ignore"), so a misspelt name in a manifest would
silently do nothing. The checks hold every manifest to these."""

from __future__ import annotations

import importlib
from functools import cache

from pydantic import AliasChoices

SETTINGS = {
    "ingest": ("ingest.settings", "IngestSettings"),
    "identity-resolution": ("identity_resolution.settings", "IdentitySettings"),
    "segment-store": ("segment_store.settings", "SegmentSettings"),
    "delivery": ("delivery.settings", "DeliverySettings"),
    "console": ("console.settings", "ConsoleSettings"),
}
STREAM_PROCESSORS = ("identity-resolution", "segment-store", "delivery")
SECRET_NAMES = ("ADMIN_TOKEN", "PARTNER_API_KEYS", "REDIS_URL", "DELIVERY_SECRET_KEY")


@cache
def env_names(service: str) -> frozenset[str]:
    """Every environment name `service`'s settings class reads."""
    module, name = SETTINGS[service]
    settings = getattr(importlib.import_module(module), name)
    prefix = settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.update(choice for choice in field.validation_alias.choices if isinstance(choice, str))
        elif isinstance(field.validation_alias, str):
            names.add(field.validation_alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return frozenset(names)


def any_service_reads(name: str) -> bool:
    return any(name in env_names(service) for service in SETTINGS)


def group_id(service: str, topic_prefix: str) -> str:
    """The consumer group the service joins, computed by the services' own code."""
    from cohort_shared.settings import CommonSettings

    return CommonSettings(topic_prefix=topic_prefix).group_id(service)


def partner_keys_parse(value: str) -> bool:
    from ingest.settings import parse_partner_keys

    try:
        parse_partner_keys(value)
    except ValueError:
        return False
    return True
