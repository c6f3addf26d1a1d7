"""One example of every message on every topic: for tests, and for reading what flows where."""

from datetime import UTC, datetime

from cohort_shared import schemas as s

NOW = datetime(2026, 1, 21, 14, 20, 30, tzinfo=UTC)
EXT = s.Identifier(kind="external_id", value="u1")
ALIAS = s.Identifier(kind="alias", value="a@x.com", label="email")

EXAMPLES: dict[str, list[s.Message]] = {
    "cohort.changes": [
        s.CohortChangesAccepted(
            workspace_id="acme", partner="mixpanel", cohort_id="mp_12345", request_id="r1", accepted_at=NOW,
            changes=[s.CohortChange(identifier=EXT), s.CohortChange(identifier=ALIAS, should_remove=True, timestamp=NOW)],
        )
    ],
    "cohort.meta": [
        s.CohortNamed(workspace_id="acme", partner="mixpanel", cohort_id="mp_1", name="Churn risk", created_at=NOW, named_at=NOW),
        s.CohortChangesReceived(workspace_id="acme", partner="mixpanel", cohort_id="mp_1", request_id="r1",
                                received=3, dropped_pre_2010=1, received_at=NOW),
    ],
    "identity.events": [
        s.TrackRequested(workspace_id="acme", request_id="r", requested_at=NOW,
                         attributes=[s.TrackedUser(external_id="u1"), s.TrackedUser(device_id="d1")]),
        s.AliasRequested(workspace_id="acme", request_id="r", requested_at=NOW,
                         user_aliases=[s.NewAlias(alias_name="a@x.com", alias_label="email")]),
        s.IdentifyRequested(workspace_id="acme", request_id="r", requested_at=NOW,
                            aliases_to_identify=[s.AliasToIdentify(external_id="u9", user_alias=s.Alias(alias_name="n", alias_label="l"))],
                            devices_to_identify=[s.DeviceToIdentify(external_id="u9", device_id="d5")]),
        s.MergeRequested(workspace_id="acme", request_id="r", requested_at=NOW,
                         merge_updates=[s.MergeUpdate(identifier_to_merge=s.ProfileIdentifier(external_id="a"),
                                                      identifier_to_keep=s.ProfileIdentifier(device_id="d"))]),
        s.DeleteRequested(workspace_id="acme", request_id="r", requested_at=NOW, external_ids=["u1"],
                          user_aliases=[s.Alias(alias_name="n", alias_label="l")], device_ids=["d1"]),
    ],
    "membership.resolved": [
        s.MembershipResolved(workspace_id="acme", partner="mixpanel", cohort_id="mp_1", user_id="U1", external_id="u1",
                             change="add", identifier=EXT, source_id="s", accepted_at=NOW, resolved_at=NOW)
    ],
    "membership.unmatched": [
        s.MembershipUnmatched(workspace_id="acme", partner="mixpanel", cohort_id="mp_1", change="remove", identifier=EXT,
                              reason="unknown_external_id", source_id="s", accepted_at=NOW, parked_until=NOW)
    ],
    "identity.merges": [
        s.ProfilesMerged(workspace_id="acme", merged_user_id="U2", kept_user_id="U1", kept_external_id="u1",
                         source_id="s", merged_at=NOW),
        s.ProfileDeleted(workspace_id="acme", user_id="U1", external_id="u1", source_id="s", deleted_at=NOW),
    ],
    "identity.profiles": [
        s.ProfileUpdated(workspace_id="acme", user_id="U1", external_id=None, identified=False,
                         aliases=[s.Alias(alias_name="n", alias_label="l")], device_ids=["d1"], updated_at=NOW)
    ],
    "membership.changes": [
        s.MembershipChanged(event_id="e1", workspace_id="acme", partner="mixpanel", cohort_id="mp_1", user_id="U1",
                            external_id=None, change="removed", cause="merge", occurred_at=NOW)
    ],
}
