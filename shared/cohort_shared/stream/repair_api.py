"""The operator API of a stream service's Kafka/Redis divergences (docs/operations.md): list what was
detected, and ask for a repair, which the partition's owner carries out."""

from __future__ import annotations

from aiokafka import TopicPartition
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from ..openapi import refusals
from .divergences import REPAIR_ACTIONS, DivergenceBook


class RepairRequest(BaseModel):
    """One partition to repair, and how."""

    model_config = ConfigDict(extra="forbid")
    topic: str = Field(min_length=1, max_length=249, description="the full topic name, prefix included")
    partition: int = Field(ge=0, le=100_000)
    action: str = Field(pattern="^(reapply|accept)$", description="reapply: read again from Redis's position "
                        "(Redis lost writes); accept: forget Redis's tracking, take Kafka's position "
                        "(topic recreated, offsets reset)")


def repair_router(ledger: DivergenceBook) -> APIRouter:
    """`GET /admin/divergences` and `POST /admin/divergences/repair` for `ledger`'s group."""
    router = APIRouter(prefix="/admin/divergences", tags=["operations"])

    @router.get("")
    async def list_divergences() -> dict:
        """Partitions found out of step and not yet repaired."""
        return {"group": ledger.group_id, "divergences": await ledger.divergences()}

    @router.post("/repair", status_code=202, responses=refusals(404))
    async def repair(request: RepairRequest) -> dict:
        """Ask the owner of a partition to repair it; it does so within a second or two."""
        if not await ledger.request_repair(TopicPartition(request.topic, request.partition), request.action):
            raise HTTPException(404, f"no divergence recorded for {request.topic}[{request.partition}] "
                                     f"in group {ledger.group_id}")
        return {"message": "repair requested", "actions": list(REPAIR_ACTIONS)}

    return router
