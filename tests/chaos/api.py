"""The system as producers and operators see it: the producer API, the profile identity API
and the read APIs of SPEC §2-§4, every call retried by `RetryingClient`."""

from __future__ import annotations

from urllib.parse import quote

from .fleet import Fleet
from .identifiers import ALIAS_LABEL, cohort_entry
from .retrying import Outcome, RetryingClient
from .workload import Cohort, ImportRequest, ProfileOp

CREATED_AT = "2026-01-21T19:20:30+05:00"


def profile_request(action: str, ops: list[ProfileOp]) -> tuple[str, dict]:
    """The path and body of one profile identity API request holding `ops` (all `action`)."""
    if action in ("track_external", "track_device"):
        return "track", {"attributes": [{op.ident.kind: op.ident.value} for op in ops]}
    if action == "alias_only":
        return "alias/new", {"user_aliases": [{"alias_name": op.ident.value, "alias_label": ALIAS_LABEL} for op in ops]}
    if action == "identify_device":
        return "identify", {"devices_to_identify": [{"external_id": op.ident.value, "device_id": op.other.value}
                                                    for op in ops]}
    if action == "merge":
        return "merge", {"merge_updates": [{"identifier_to_merge": op.ident.as_operator_identifier(),
                                            "identifier_to_keep": op.other.as_operator_identifier()} for op in ops]}
    if action == "delete":
        body: dict = {"external_ids": [], "user_aliases": [], "device_ids": []}
        for op in ops:
            if op.ident.kind == "alias":
                body["user_aliases"].append({"alias_name": op.ident.value, "alias_label": ALIAS_LABEL})
            else:
                body[f"{op.ident.kind}s"].append(op.ident.value)
        return "delete", {k: v for k, v in body.items() if v}
    raise ValueError(action)


class SystemApi:
    def __init__(self, client: RetryingClient, fleet: Fleet, workspace: str, admin_token: str,
                 partner_keys: dict[str, str]) -> None:
        self.client, self.fleet, self.ws = client, fleet, workspace
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self.partner_keys = partner_keys
        self.secret = ""
        self.read_budget: float | None = None  # seconds a read may keep retrying; None: the run's deadline

    async def create_data_import_key(self) -> None:
        outcome = await self.client.request("POST", self.fleet.urls("ingest"), f"/workspaces/{self.ws}/data-import-keys",
                                            headers=self.admin)
        _expect(outcome, 201)
        self.secret = outcome.response.json()["data_import_key"]

    async def create_rest_api_key(self, workspace: str) -> str:
        """A REST API key of `workspace` with every permission, for fuzzing the Braze REST API
        past its key check; "" when this version of ingest has no such keys."""
        outcome = await self.client.request("POST", self.fleet.urls("ingest"), f"/workspaces/{workspace}/rest-api-keys",
                                            headers=self.admin, json={"name": "chaos fuzzing", "permissions": [
                                                "users.track", "users.alias.new", "users.identify", "users.merge",
                                                "users.delete", "users.export.ids"]})
        answered = outcome.response is not None and outcome.response.status_code == 201
        return outcome.response.json()["rest_api_key"] if answered else ""

    def _partner_body(self, partner: str, body: dict) -> dict:
        return {"partner_api_key": self.partner_keys[partner], "client_secret": self.secret, **body}

    async def name_cohort(self, cohort: Cohort) -> None:
        partner, cohort_id = cohort
        body = self._partner_body(partner, {"cohort_id": cohort_id, "name": f"Chaos {cohort_id}",
                                            "created_at": CREATED_AT})
        _expect(await self.client.request("POST", self.fleet.urls("ingest"), f"/partners/{partner}/cohorts",
                                          json=body), 202)

    async def send_changes(self, request: ImportRequest) -> Outcome:
        partner, cohort_id = request.cohort
        adds = [c.ident for c in request.changes if not c.remove]
        removes = [c.ident for c in request.changes if c.remove]
        entries = [cohort_entry(adds, False)] if adds else []
        entries += [cohort_entry(removes, True)] if removes else []
        body = self._partner_body(partner, {"cohort_id": cohort_id, "cohort_changes": entries})
        return await self.client.request("POST", self.fleet.urls("ingest"), f"/partners/{partner}/cohorts/users",
                                         json=body)

    async def send_profile_ops(self, action: str, ops: list[ProfileOp]) -> Outcome:
        path, body = profile_request(action, ops)
        return await self.client.request("POST", self.fleet.urls("ingest"), f"/workspaces/{self.ws}/users/{path}",
                                         json=body, headers=self.admin)

    async def _get(self, module: str, path: str) -> dict | None:
        """A read API answer, or None for a 404."""
        outcome = await self.client.request("GET", self.fleet.urls(module), f"/workspaces/{self.ws}{path}",
                                            headers=self.admin, budget=self.read_budget)
        if outcome.response is not None and outcome.response.status_code == 404:
            return None
        _expect(outcome, 200)
        return outcome.response.json()

    async def identity(self, user_ref: str) -> dict | None:
        return await self._get("identity_resolution", f"/identities/{user_ref}")

    async def user_cohorts(self, user_ref: str) -> dict | None:
        return await self._get("segment_store", f"/users/{user_ref}/cohorts")

    async def cohort(self, cohort_id: str) -> dict | None:
        return await self._get("segment_store", f"/cohorts/{cohort_id}")

    async def cohorts(self) -> list[dict]:
        return (await self._get("segment_store", "/cohorts?limit=1000") or {}).get("cohorts", [])

    async def usage(self) -> dict | None:
        return await self._get("segment_store", "/usage")

    async def members(self, cohort_id: str) -> list[str]:
        """Every member's user_id, walking every page (a member listed twice stays twice)."""
        found: list[str] = []
        cursor = None
        while True:
            query = f"?limit=1000{'&cursor=' + quote(cursor, safe='') if cursor else ''}"
            page = await self._get("segment_store", f"/cohorts/{cohort_id}/members{query}")
            if page is None:
                return found
            found += [m["user_id"] for m in page["members"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return found


class Refused(Exception):
    """The system refused a request that the contract says it must accept."""


def _expect(outcome: Outcome, status: int) -> None:
    if outcome.response is None or outcome.response.status_code != status:
        got = outcome.response.status_code if outcome.response is not None else "no answer"
        text = outcome.response.text[:300] if outcome.response is not None else ""
        raise Refused(f"expected {status}, got {got}: {text}")
