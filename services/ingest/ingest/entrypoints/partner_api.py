"""The producer API of SPEC §2: Braze-style partner cohort import, keys in the body."""

from __future__ import annotations

from cohort_shared.openapi import json_body
from fastapi import APIRouter, Request

from ..domain.cohort_import import CohortChangesBody, CohortNamingBody
from ..metrics import IDENTIFIERS
from ..service_layer import IngestService
from .request_body import read_json_object
from .responses import CohortChangesSuccess, Dropped, Success, errors

router = APIRouter(tags=["producer API"])
REFUSALS = errors(400, 401, 413, 429, 503)


def _service(request: Request) -> IngestService:
    return request.app.state.ingest


@router.post(
    "/partners/{partner}/cohorts", status_code=202, response_model=Success,
    responses=REFUSALS, openapi_extra=json_body(CohortNamingBody),
)
async def name_cohort(partner: str, request: Request) -> Success:
    """Create or rename a cohort; 202 once the name is durably in Kafka."""
    service = _service(request)
    body = await read_json_object(request, service.settings.max_body_bytes)
    owner = await service.authorize_partner(partner, body)
    await service.name_cohort(owner, partner, body)
    return Success()


@router.post(
    "/partners/{partner}/cohorts/users", status_code=202, response_model=CohortChangesSuccess,
    responses=REFUSALS, openapi_extra=json_body(CohortChangesBody),
)
async def import_cohort_changes(partner: str, request: Request) -> CohortChangesSuccess:
    """Add or remove cohort members; 202 once every accepted change is durably in Kafka."""
    service = _service(request)
    body = await read_json_object(request, service.settings.max_body_bytes)
    owner = await service.authorize_partner(partner, body)
    outcome = await service.import_cohort_changes(owner, partner, body)
    dropped = outcome.received.dropped_pre_2010
    IDENTIFIERS.labels("accepted").inc(outcome.accepted_count)
    IDENTIFIERS.labels("dropped_pre_2010").inc(dropped)
    return CohortChangesSuccess(accepted=outcome.accepted_count, dropped=Dropped(pre_2010=dropped))
