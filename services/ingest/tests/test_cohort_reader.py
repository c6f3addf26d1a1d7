"""The export's reader of segment-store's user cohorts, on an httpx transport answering in
its place: the call it makes, and every failure an export must answer 503 to."""

import httpx
import pytest
from ingest.adapters.cohort_reader import SegmentStoreCohorts
from ingest.domain.errors import Unavailable

CHURN = {"partner": "mixpanel", "cohort_id": "mp_1", "name": "Churn risk"}


def reader(answer) -> tuple[SegmentStoreCohorts, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)
    return SegmentStoreCohorts("http://segment:8082/", "op-token", 1.0, transport=httpx.MockTransport(handle)), seen


async def test_each_user_is_asked_for_with_the_operator_token_and_an_unknown_one_is_in_none():
    def answer(request):
        if request.url.raw_path.endswith(b"/u%2Fb/cohorts"):
            return httpx.Response(404, json={"message": "no such user"})
        return httpx.Response(200, json={"user_id": "ua", "cohorts": [CHURN]})
    cohorts, seen = reader(answer)
    assert await cohorts.cohorts_of("ac me", ["ua", "u/b", "ua"]) == {"ua": [CHURN], "u/b": []}
    assert sorted(r.url.raw_path.decode() for r in seen) == ["/workspaces/ac%20me/users/u%2Fb/cohorts",
                                                            "/workspaces/ac%20me/users/ua/cohorts"]
    assert {r.headers["authorization"] for r in seen} == {"Bearer op-token"}


@pytest.mark.parametrize("answer", [lambda r: httpx.Response(500, json={"message": "redis"}),
                                    lambda r: httpx.Response(401, json={"message": "token"}),
                                    lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused"))])
async def test_no_useful_answer_is_unavailable_with_a_retry_after(answer):
    cohorts, _ = reader(answer)
    with pytest.raises(Unavailable) as raised:
        await cohorts.cohorts_of("acme", ["ua"])
    assert raised.value.status == 503 and raised.value.headers == {"Retry-After": "1"}
    assert "segment-store" in raised.value.message and "op-token" not in raised.value.message
