"""The two sizes of the suite: `full` (SPEC §10, the issue's numbers) and `ci` (about three
minutes on a 2-core machine, fewer kills, single broker)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Population:
    """How many profiles of each kind the prelude creates."""

    identified: int  # matched by external_id
    alias_only: int  # matched by alias
    anonymous: int  # matched by device_id
    device_identified: int  # anonymous, then identified: their device is unmatched
    volatile: int  # identified, in cohorts from the prelude, then merged and deleted
    unknown: int  # identifiers never created: unmatched and parked


@dataclass(frozen=True)
class Faults:
    """How many of each fault one run injects (spread at random over the import)."""

    kill_identity: int
    kill_segment: int
    kill_ingest: int
    kill_delivery: int
    kill_broker: int
    kill_redis: int
    redis_read_only: int
    freeze_segment: int
    poison: int


@dataclass(frozen=True)
class Profile:
    name: str
    population: Population
    changes: int  # identifiers sent by the continuous import, at least
    import_seconds: float  # the import is paced to last about this long
    volatile_ops: int  # merges and deletes interleaved with the import
    faults: Faults
    fuzz_examples: int  # schemathesis --max-examples per operation
    segment_session_timeout_ms: int  # the frozen instance stays stopped longer than this
    deadline_seconds: float  # the whole run, whatever happens
    settle_seconds: float  # after the import, the longest wait for the output to settle
    service_env: dict[str, str] = field(default_factory=dict)
    cohorts_mixpanel: int = 5
    cohorts_amplitude: int = 2
    concurrency: int = 4  # producer requests in flight
    request_max: int = 1000  # identifiers in one producer request, at most (SPEC §2 allows 1,000)
    delivery_instances: int = 2  # delivery's consumer group: a kill hands webhooks over to the other


FULL = Profile(
    name="full",
    population=Population(identified=6000, alias_only=600, anonymous=600, device_identified=200, volatile=800,
                          unknown=150),
    changes=200_000,
    import_seconds=420,
    volatile_ops=500,
    faults=Faults(kill_identity=12, kill_segment=12, kill_ingest=6, kill_delivery=6, kill_broker=1, kill_redis=1, redis_read_only=1,
                  freeze_segment=1, poison=1),
    fuzz_examples=300,
    segment_session_timeout_ms=15_000,
    deadline_seconds=50 * 60,
    settle_seconds=300,
)

CI = Profile(
    name="ci",
    population=Population(identified=1500, alias_only=150, anonymous=150, device_identified=50, volatile=150,
                          unknown=40),
    changes=20_000,
    import_seconds=75,
    volatile_ops=80,
    faults=Faults(kill_identity=3, kill_segment=3, kill_ingest=2, kill_delivery=2, kill_broker=1, kill_redis=1, redis_read_only=1,
                  freeze_segment=1, poison=1),
    fuzz_examples=15,
    request_max=500,
    delivery_instances=1,
    segment_session_timeout_ms=6_000,
    deadline_seconds=12 * 60,
    settle_seconds=90,
)

PROFILES = {p.name: p for p in (FULL, CI)}
