import json

import pytest
from cohort_cli.identifiers import Identifier
from cohort_cli.producer.snapshots import SnapshotError, SnapshotKey, SnapshotStore

KEY = SnapshotKey("demo", "mixpanel", "mp/12 345")
MEMBERS = {Identifier.external_id("u1"), Identifier.alias("a@x.com", "email"), Identifier.device_id("d1")}


def test_a_saved_snapshot_loads_back(tmp_path):
    store = SnapshotStore(tmp_path)
    assert store.load(KEY) is None
    path = store.save(KEY, MEMBERS)
    assert path.parent == tmp_path / "demo" / "mixpanel" and "/" not in path.name
    assert store.load(KEY).members == MEMBERS
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_snapshots_of_other_cohorts_and_keys_do_not_collide(tmp_path):
    store = SnapshotStore(tmp_path)
    store.save(KEY, MEMBERS)
    assert store.load(SnapshotKey("demo", "mixpanel", "mp_12_345")) is None
    one = SnapshotKey.for_key("http://a", "key-1", "mixpanel", "c")
    two = SnapshotKey.for_key("http://a", "key-2", "mixpanel", "c")
    assert one != two and "key-1" not in one.namespace


def test_a_damaged_snapshot_stops_rather_than_forgetting_removals(tmp_path):
    store = SnapshotStore(tmp_path)
    path = store.save(KEY, MEMBERS)
    path.write_text("{not json")
    with pytest.raises(SnapshotError, match="cannot read snapshot"):
        store.load(KEY)
    path.write_text(
        json.dumps(
            {
                "version": 1,
                "cohort_id": KEY.cohort_id,
                "members": [["alias", "x"]],
                "synced_at": "2026-01-01T00:00:00+00:00",
            }
        )
    )
    with pytest.raises(SnapshotError, match="not valid"):
        store.load(KEY)


def test_a_snapshot_counts_the_syncs_behind_it_and_older_files_count_one(tmp_path):
    store = SnapshotStore(tmp_path)
    path = store.save(KEY, MEMBERS, syncs=7)
    assert store.load(KEY).syncs == 7
    document = json.loads(path.read_text())
    del document["syncs"]  # a snapshot written before the count existed
    path.write_text(json.dumps(document))
    assert store.load(KEY).syncs == 1
    document["syncs"] = 0
    path.write_text(json.dumps(document))
    with pytest.raises(SnapshotError, match="syncs must be a positive whole number"):
        store.load(KEY)
