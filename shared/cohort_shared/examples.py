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
            changes=[s.CohortChange("external_id", "u1"), s.CohortChange("alias", "a@x.com", "email", should_remove=True,
                                                                       timestamp=NOW)],
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
    "identity.forwarded": [
        s.CohortChangesForwarded(workspace_id="acme", partner="mixpanel", cohort_id="mp_1", request_id="r1",
                                 accepted_at=NOW, rows=[(0, "external_id", "u1", None, False),
                                                        (3, "alias", "a@x.com", "email", True)])
    ],
    "membership.resolved": [
        s.MembershipResolvedBatch(workspace_id="acme", resolved_at=NOW, rows=[
            ("mixpanel", "mp_1", "U1", "u1", "add", "r1:0", 1768998030000, False),
            ("mixpanel", "mp_1", "U2", None, "remove", "r1:1", 1768998030000, True)])
    ],
    "membership.unmatched": [
        s.MembershipUnmatchedBatch(workspace_id="acme", partner="mixpanel", cohort_id="mp_1", accepted_at=NOW, rows=[
            ("external_id", "u1", None, "remove", "unknown_external_id", "r1:2", 1769084430000),
            ("alias", "a@x.com", "email", "add", "invalid_identifier", "r1:3", None)])
    ],
    "segment.handovers": [
        s.MembershipsHandedOver(workspace_id="acme", merged_user_id="U2", kept_user_id="U1", kept_external_id="u1",
                                cohorts=[("mixpanel", "mp_1")], source_id="m1"),
        s.HandoverCompleted(workspace_id="acme", merged_user_id="U2", cohorts=[("mixpanel", "mp_1")], source_id="m1"),
        s.ChangesRedirected(workspace_id="acme", user_id="U1", rows=[
            ("mixpanel", "mp_1", "U1", None, "add", "r1:4", 1768998030000, False)], hops=1),
    ],
    "identity.merges": [
        s.ProfilesMerged(workspace_id="acme", merged_user_id="U2", kept_user_id="U1", kept_external_id="u1",
                         source_id="s", merged_at=NOW),
        s.ProfileMergeAnnounced(workspace_id="acme", kept_user_id="U1", merged_user_id="U2", source_id="s"),
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
