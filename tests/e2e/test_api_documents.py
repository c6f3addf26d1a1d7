"""The HTTP contract from outside: each running service serves exactly the OpenAPI document
committed in docs/api/, and schemathesis with its default checks finds nothing wrong with
any service against it (a short run: a few examples per operation, a fixed seed)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.chaos.fuzz import fuzz_service

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api"
DOCUMENTS = {"ingest": "ingest", "identity_resolution": "identity-resolution", "segment_store": "segment-store",
             "delivery": "delivery"}
EXAMPLES_PER_OPERATION = 5
SEED = 15


@pytest.fixture(scope="module")
def with_delivery() -> bool:
    return True


@pytest.mark.parametrize("module", DOCUMENTS)
def test_each_service_serves_the_committed_document(stack, module: str) -> None:
    served = httpx.get(f"{stack.urls[module]}/openapi.json", timeout=10).json()
    committed = json.loads((DOCS / f"{DOCUMENTS[module]}.openapi.json").read_text())
    assert served == committed, f"docs/api/{DOCUMENTS[module]}.openapi.json is not what {module} serves: run make docs"


@pytest.mark.parametrize("module", DOCUMENTS)
async def test_schemathesis_default_checks_find_nothing(stack, module: str, tmp_path: Path) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{stack.urls['ingest']}/workspaces/fuzzed/data-import-keys", headers=stack.admin)
    secret = answer.json()["data_import_key"]
    partner_env = {"CHAOS_FUZZ_PARTNER_KEYS": stack.env["PARTNER_API_KEYS"], "CHAOS_FUZZ_CLIENT_SECRET": secret}
    result = await fuzz_service(module, stack.urls[module], stack.env["ADMIN_TOKEN"], EXAMPLES_PER_OPERATION, SEED,
                                tmp_path, timeout=240, partner_env=partner_env)
    log = tmp_path / module / "schemathesis.log"
    assert result.error is None, f"{result.error}\n{log.read_text()[-3000:] if log.exists() else ''}"
    assert result.requests > 50, "schemathesis sent almost nothing"
    assert result.server_errors == 0 and result.refusals_without_message == 0, result.examples
    assert result.conformance == {}, log.read_text()[-6000:]
