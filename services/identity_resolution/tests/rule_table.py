"""Every matching and profile rule as a table: input records in, expected outputs out.

Driven against the pure Python rules (`test_rules.py`) and through the book store on a
real Redis (`tests/integration/test_identity_resolution_rules.py`). Tuples are explained
in `identity_resolution.testing`; `user("t1", 1)` is the profile the second entry of
request t1 created.
"""

from identity_resolution.testing import (
    WINDOW,
    A,
    D,
    E,
    P,
    Scenario,
    Step,
    add,
    alias_new,
    cohort,
    delete,
    identify,
    merge,
    remove,
    track,
    user,
)

T1, T1b, A1 = user("t1"), user("t1", 1), user("a1")

SCENARIOS = [
    Scenario("identified users match by external_id; cohort import never creates a user", [
        Step(track("t1", E("u1")), [P(T1, "u1")]),
        Step(cohort("c1", add(E("u1")), remove(E("u1")), add(E("u2"))), [
            ("resolved", "c1", "add", "ext:u1", T1, "u1"),
            ("resolved", "c1", "remove", "ext:u1", T1, "u1"),
            ("parked", "c1", "add", "ext:u2", "unknown_external_id"),
        ]),
    ], lookups={"external_id:u1": P(T1, "u1"), T1: P(T1, "u1"), "external_id:u2": None}),

    Scenario("identified users also match by alias; alias/new releases changes parked for the alias", [
        Step(track("t1", E("u1")), [P(T1, "u1")]),
        Step(cohort("c1", add(A("email", "a@x.com"))), [("parked", "c1", "add", "alias:email:a@x.com", "unknown_alias")]),
        Step(alias_new("a1", ("email", "a@x.com", "u1")), [
            P(T1, "u1", ["email:a@x.com"]),
            ("drained", "c1", "add", "alias:email:a@x.com", T1, "u1", "c1:0"),
        ]),
        Step(cohort("c2", add(A("email", "a@x.com"))), [("resolved", "c1", "add", "alias:email:a@x.com", T1, "u1")]),
    ], lookups={"alias:email:a@x.com": P(T1, "u1", ["email:a@x.com"])}),

    Scenario("alias-only users match by alias only, with no external_id", [
        Step(alias_new("a1", ("email", "b@x.com", None)), [P(A1, None, ["email:b@x.com"])]),
        Step(cohort("c1", add(A("email", "b@x.com")), add(A("phone", "b@x.com"))), [
            ("resolved", "c1", "add", "alias:email:b@x.com", A1, None),
            ("parked", "c1", "add", "alias:phone:b@x.com", "unknown_alias"),
        ]),
    ], lookups={"alias:email:b@x.com": P(A1, None, ["email:b@x.com"]), "alias:phone:b@x.com": None}),

    Scenario("anonymous users match by device_id", [
        Step(track("t1", D("d1")), [P(T1, None, [], ["d1"])]),
        Step(cohort("c1", add(D("d1")), remove(D("d1"))), [
            ("resolved", "c1", "add", "dev:d1", T1, None),
            ("resolved", "c1", "remove", "dev:d1", T1, None),
        ]),
    ]),

    Scenario("a device of a user created anonymous and later identified: device_id_of_identified_user, not parked", [
        Step(track("t1", D("d1")), [P(T1, None, [], ["d1"])]),
        Step(identify("i1", devices=[("u9", "d1")]), [P(T1, "u9", [], ["d1"])]),
        Step(cohort("c1", add(D("d1")), add(E("u9"))), [
            ("unmatched", "c1", "add", "dev:d1", "device_id_of_identified_user"),
            ("resolved", "c1", "add", "ext:u9", T1, "u9"),
        ]),
    ], lookups={"device_id:d1": P(T1, "u9", [], ["d1"])}),

    Scenario("merge anonymous into identified: the device moves and falls under device_id_of_identified_user", [
        Step(track("t1", E("u1"), D("d1")), [P(T1, "u1"), P(T1b, None, [], ["d1"])]),
        Step(merge("m1", (D("d1"), E("u1"))), [("merged", T1b, T1), P(T1, "u1", [], ["d1"]), ("tombstone", T1b)]),
        Step(cohort("c1", add(D("d1")), add(E("u1"))), [
            ("unmatched", "c1", "add", "dev:d1", "device_id_of_identified_user"),
            ("resolved", "c1", "add", "ext:u1", T1, "u1"),
        ]),
    ], lookups={T1b: None, "device_id:d1": P(T1, "u1", [], ["d1"])}),

    Scenario("merge identified into anonymous: aliases move, the merged external_id is gone", [
        Step(track("t1", E("u2"), D("d2")), [P(T1, "u2"), P(T1b, None, [], ["d2"])]),
        Step(alias_new("a1", ("email", "c@x.com", "u2")), [P(T1, "u2", ["email:c@x.com"])]),
        Step(merge("m1", (E("u2"), D("d2"))), [
            ("merged", T1, T1b), P(T1b, None, ["email:c@x.com"], ["d2"]), ("tombstone", T1),
        ]),
        Step(cohort("c1", add(A("email", "c@x.com")), add(D("d2")), add(E("u2"))), [
            ("resolved", "c1", "add", "alias:email:c@x.com", T1b, None),
            ("resolved", "c1", "add", "dev:d2", T1b, None),
            ("parked", "c1", "add", "ext:u2", "unknown_external_id"),
        ]),
    ], lookups={"external_id:u2": None, T1: None}),

    Scenario("merge identified into identified: the merged external_id is gone until tracked again", [
        Step(track("t1", E("u1"), E("u2")), [P(T1, "u1"), P(T1b, "u2")]),
        Step(merge("m1", (E("u2"), E("u1"))), [("merged", T1b, T1), ("tombstone", T1b)]),
        Step(cohort("c1", add(E("u2"))), [("parked", "c1", "add", "ext:u2", "unknown_external_id")]),
        Step(track("t2", E("u2")), [P(user("t2"), "u2"), ("drained", "c1", "add", "ext:u2", user("t2"), "u2", "c1:0")]),
    ]),

    Scenario("merge two anonymous users: devices move and still match", [
        Step(track("t1", D("d1"), D("d2")), [P(T1, None, [], ["d1"]), P(T1b, None, [], ["d2"])]),
        Step(merge("m1", (D("d1"), D("d2"))), [("merged", T1, T1b), P(T1b, None, [], ["d1", "d2"]), ("tombstone", T1)]),
        Step(cohort("c1", add(D("d1"))), [("resolved", "c1", "add", "dev:d1", T1b, None)]),
    ]),

    Scenario("identify an alias-only user with a new external_id: it becomes identified; parked changes apply", [
        Step(cohort("c1", add(E("u5"))), [("parked", "c1", "add", "ext:u5", "unknown_external_id")]),
        Step(alias_new("a1", ("email", "e@x.com", None)), [P(A1, None, ["email:e@x.com"])]),
        Step(identify("i1", aliases=[("u5", "email", "e@x.com")]), [
            P(A1, "u5", ["email:e@x.com"]),
            ("drained", "c1", "add", "ext:u5", A1, "u5", "c1:0"),
        ]),
        Step(cohort("c2", add(E("u5")), add(A("email", "e@x.com"))), [
            ("resolved", "c1", "add", "ext:u5", A1, "u5"),
            ("resolved", "c1", "add", "alias:email:e@x.com", A1, "u5"),
        ]),
    ]),

    Scenario("identify an alias-only user with an existing external_id: merged into the existing profile", [
        Step(track("t1", E("u1")), [P(T1, "u1")]),
        Step(alias_new("a1", ("email", "f@x.com", None)), [P(A1, None, ["email:f@x.com"])]),
        Step(identify("i1", aliases=[("u1", "email", "f@x.com")]), [
            ("merged", A1, T1), P(T1, "u1", ["email:f@x.com"]), ("tombstone", A1),
        ]),
        Step(cohort("c1", add(A("email", "f@x.com"))), [("resolved", "c1", "add", "alias:email:f@x.com", T1, "u1")]),
    ], lookups={A1: None}),

    Scenario("identify an anonymous device with an existing external_id: merged, the device no longer matches", [
        Step(track("t1", E("u1")), [P(T1, "u1")]),
        Step(track("t2", D("d3")), [P(user("t2"), None, [], ["d3"])]),
        Step(identify("i1", devices=[("u1", "d3")]), [
            ("merged", user("t2"), T1), P(T1, "u1", [], ["d3"]), ("tombstone", user("t2")),
        ]),
        Step(cohort("c1", add(D("d3"))), [("unmatched", "c1", "add", "dev:d3", "device_id_of_identified_user")]),
    ]),

    Scenario("delete by external_id: its external_id, aliases and devices stop matching", [
        Step(track("t1", D("d4")), [P(T1, None, [], ["d4"])]),
        Step(identify("i1", devices=[("u1", "d4")]), [P(T1, "u1", [], ["d4"])]),
        Step(alias_new("a1", ("email", "g@x.com", "u1")), [P(T1, "u1", ["email:g@x.com"], ["d4"])]),
        Step(delete("x1", E("u1")), [("deleted", T1), ("tombstone", T1)]),
        Step(cohort("c1", add(E("u1")), add(A("email", "g@x.com")), add(D("d4"))), [
            ("parked", "c1", "add", "ext:u1", "unknown_external_id"),
            ("parked", "c1", "add", "alias:email:g@x.com", "unknown_alias"),
            ("parked", "c1", "add", "dev:d4", "unknown_device_id"),
        ]),
    ], lookups={T1: None, "device_id:d4": None, "alias:email:g@x.com": None}),

    Scenario("delete by alias and by device", [
        Step(alias_new("a1", ("email", "h@x.com", None)), [P(A1, None, ["email:h@x.com"])]),
        Step(track("t1", D("d5")), [P(T1, None, [], ["d5"])]),
        Step(delete("x1", A("email", "h@x.com"), D("d5")), [
            ("deleted", A1), ("tombstone", A1), ("deleted", T1), ("tombstone", T1),
        ]),
    ], lookups={A1: None, T1: None}),

    Scenario("bogus identifiers are invalid_identifier: never matched, never parked, never create users", [
        Step(track("t1", E("null"), D(" Undefined "), E("0")), skipped={"invalid_identifier": 3}),
        Step(alias_new("a1", ("email", "anonymous", None), ("", "a@x.com", None)), skipped={"invalid_identifier": 2}),
        Step(cohort(
            "c1", add(E(" NULL ")), add(E("undefined")), add(D("0")), remove(D("-1")), add(E("[object Object]")),
            add(A("email", "anonymous")), add(A("", "a@x.com")), add(E("NaN")), add(E("None")), add(E("")),
            add(E("\tnull\n")),
        ), [
            ("unmatched", "c1", "add", "ext: NULL ", "invalid_identifier"),
            ("unmatched", "c1", "add", "ext:undefined", "invalid_identifier"),
            ("unmatched", "c1", "add", "dev:0", "invalid_identifier"),
            ("unmatched", "c1", "remove", "dev:-1", "invalid_identifier"),
            ("unmatched", "c1", "add", "ext:[object Object]", "invalid_identifier"),
            ("unmatched", "c1", "add", "alias:email:anonymous", "invalid_identifier"),
            ("unmatched", "c1", "add", "alias::a@x.com", "invalid_identifier"),
            ("unmatched", "c1", "add", "ext:NaN", "invalid_identifier"),
            ("unmatched", "c1", "add", "ext:None", "invalid_identifier"),
            ("unmatched", "c1", "add", "ext:", "invalid_identifier"),
            ("unmatched", "c1", "add", "ext:\tnull\n", "invalid_identifier"),
        ]),
        # Near misses are real identifiers: not ASCII whitespace, not ASCII, or longer.
        Step(cohort("c2", add(E("nullable")), add(E("\u00a0null")), add(E("\uff10"))), [
            ("parked", "c1", "add", "ext:nullable", "unknown_external_id"),
            ("parked", "c1", "add", "ext:\u00a0null", "unknown_external_id"),
            ("parked", "c1", "add", "ext:\uff10", "unknown_external_id"),
        ]),
    ], lookups={"external_id:null": None}),

    Scenario("unknown identifiers are parked, applied when the identity appears; a later change replaces one", [
        Step(cohort("c1", add(E("u7")), add(A("email", "i@x.com")), add(D("d7"))), [
            ("parked", "c1", "add", "ext:u7", "unknown_external_id"),
            ("parked", "c1", "add", "alias:email:i@x.com", "unknown_alias"),
            ("parked", "c1", "add", "dev:d7", "unknown_device_id"),
        ]),
        Step(cohort("c2", remove(E("u7"))), [("parked", "c1", "remove", "ext:u7", "unknown_external_id")]),
        Step(cohort("c3", add(E("u7")), cohort_id="c2"), [("parked", "c2", "add", "ext:u7", "unknown_external_id")]),
        Step(track("t1", E("u7"), D("d7")), [
            P(T1, "u7"),
            ("drained", "c1", "remove", "ext:u7", T1, "u7", "c2:0"),
            ("drained", "c2", "add", "ext:u7", T1, "u7", "c3:0"),
            P(T1b, None, [], ["d7"]),
            ("drained", "c1", "add", "dev:d7", T1b, None, "c1:2"),
        ]),
        Step(alias_new("a1", ("email", "i@x.com", None)), [
            P(A1, None, ["email:i@x.com"]), ("drained", "c1", "add", "alias:email:i@x.com", A1, None, "c1:1"),
        ]),
        Step(track("t2", E("u7"))),  # a touch; nothing is parked any more
    ]),

    Scenario("parked changes expire after the window", [
        Step(cohort("c1", add(E("u8")), add(E("u9"))), [
            ("parked", "c1", "add", "ext:u8", "unknown_external_id"),
            ("parked", "c1", "add", "ext:u9", "unknown_external_id"),
        ]),
        Step(track("t1", E("u8")), [P(T1, "u8"), ("drained", "c1", "add", "ext:u8", T1, "u8", "c1:0")],
             after_seconds=WINDOW),
        Step(track("t2", E("u9")), [P(user("t2"), "u9")], after_seconds=WINDOW + 1),
    ]),

    Scenario("unknown identifiers in merge, delete, identify and alias/new are skipped and counted", [
        Step(track("t1", E("u1")), [P(T1, "u1")]),
        Step(merge("m1", (E("nobody"), E("u1")), (E("u1"), D("nodevice")), (E("u1"), E("u1")), (E("null"), E("u1"))),
             skipped={"unknown_external_id": 1, "unknown_device_id": 1, "same_profile": 1, "invalid_identifier": 1}),
        Step(delete("x1", E("nobody"), A("email", "nobody@x.com")),
             skipped={"unknown_external_id": 1, "unknown_alias": 1}),
        Step(identify("i1", aliases=[("u1", "email", "nobody@x.com")], devices=[("u1", "nodevice"), ("null", "d")]),
             skipped={"unknown_alias": 1, "unknown_device_id": 1, "invalid_identifier": 1}),
        Step(alias_new("a1", ("email", "j@x.com", "nobody")), skipped={"unknown_external_id": 1}),
    ], lookups={"external_id:u1": P(T1, "u1")}),

    Scenario("touches publish nothing", [
        Step(track("t1", E("u1"), D("d1")), [P(T1, "u1"), P(T1b, None, [], ["d1"])]),
        Step(track("t2", E("u1"), D("d1"))),
        Step(alias_new("a1", ("email", "k@x.com", None)), [P(A1, None, ["email:k@x.com"])]),
        Step(alias_new("a2", ("email", "k@x.com", None))),
        Step(identify("i1", devices=[("u9", "d1")]), [P(T1b, "u9", [], ["d1"])]),
        Step(identify("i2", devices=[("u9", "d1")])),
    ]),

    Scenario("conflicts are skipped: an alias of another user, an already identified profile", [
        Step(track("t1", E("u1"), E("u2")), [P(T1, "u1"), P(T1b, "u2")]),
        Step(alias_new("a1", ("email", "l@x.com", "u1")), [P(T1, "u1", ["email:l@x.com"])]),
        Step(alias_new("a2", ("email", "l@x.com", "u2")), skipped={"alias_of_other_user": 1}),
        Step(identify("i1", aliases=[("u3", "email", "l@x.com")]), skipped={"already_identified": 1}),
    ], lookups={"alias:email:l@x.com": P(T1, "u1", ["email:l@x.com"])}),

    Scenario("identifiers with separators and non-ASCII text are kept apart", [
        Step(alias_new("a1", ("e:mail", "x", None), ("e", ":mailx", None), ("\u00e9", "\u00fc", None)), [
            P(A1, None, ["e:mail:x"]), P(user("a1", 1), None, ["e::mailx"]), P(user("a1", 2), None, ["\u00e9:\u00fc"]),
        ]),
        Step(cohort("c1", add(A("e:mail", "x")), add(A("e", ":mailx")), add(A("\u00e9", "\u00fc"))), [
            ("resolved", "c1", "add", "alias:e:mail:x", A1, None),
            ("resolved", "c1", "add", "alias:e::mailx", user("a1", 1), None),
            ("resolved", "c1", "add", "alias:\u00e9:\u00fc", user("a1", 2), None),
        ]),
    ], lookups={"alias:e:mail:x": None, "alias:e::mailx": P(user("a1", 1), None, ["e::mailx"])}),
]
