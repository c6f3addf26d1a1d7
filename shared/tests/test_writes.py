"""The write-set: commands in order, keys interned, adjacent commands on one key joined."""

from cohort_shared.state.writes import CHUNK, WriteSet


def test_adjacent_commands_on_one_key_join_and_anything_between_keeps_order():
    writes = WriteSet()
    writes.hset("rev:1", {1: "a"})
    writes.hset("rev:1", {2: "b"})
    writes.sadd("all:1", [1])
    writes.hset("rev:1", {1: "c"})  # after the SADD: a command of its own, so the later value still wins
    writes.hincrby("cm", "ap", 1)
    writes.hincrby("cm", "ap", 1)  # counters are not joined
    assert writes.keys == ["rev:1", "all:1", "cm"]
    assert writes.ops == [("HSET", 0, [1, "a", 2, "b"]), ("SADD", 1, [1]), ("HSET", 0, [1, "c"]),
                          ("HINCRBY", 2, ["ap", 1]), ("HINCRBY", 2, ["ap", 1])]
    assert writes.encode() == [5, "HSET", 0, 4, 1, "a", 2, "b", "SADD", 1, 1, 1, "HSET", 0, 2, 1, "c",
                               "HINCRBY", 2, 2, "ap", 1, "HINCRBY", 2, 2, "ap", 1]


def test_joining_leaves_the_callers_lists_alone():
    members = [1, 2]
    writes = WriteSet()
    writes.sadd("m", members)
    writes.sadd("m", [3])
    assert members == [1, 2] and writes.ops == [("SADD", 0, [1, 2, 3])]


def test_a_joined_command_never_grows_past_the_chunk():
    writes = WriteSet()
    for n in range(CHUNK + 10):
        writes.sadd("m", [n])
    assert [len(args) for _, _, args in writes.ops] == [CHUNK, 10]
    writes = WriteSet()
    writes.hset("h", {n: n for n in range(CHUNK)})
    assert [len(args) for _, _, args in writes.ops] == [CHUNK, CHUNK]


def test_hset_of_a_flat_list_writes_as_hset_of_a_mapping_and_never_splits_a_pair():
    mapping = {n: f"v{n}" for n in range(CHUNK // 2 + 3)}
    flat = [x for pair in mapping.items() for x in pair]
    by_mapping, by_pairs = WriteSet(), WriteSet()
    by_mapping.hset("h", mapping)
    by_pairs.hset_pairs("h", flat)
    assert by_pairs.ops == by_mapping.ops and [len(args) for _, _, args in by_pairs.ops] == [CHUNK, 6]
    by_pairs.hset_pairs("h", [1, "x"])
    assert by_pairs.ops[-1] == ("HSET", 0, [*flat[CHUNK:], 1, "x"]) and flat[-1] == f"v{CHUNK // 2 + 2}"
