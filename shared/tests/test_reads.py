"""The hot reads' own RESP packing says exactly what redis-py's would."""

import redis
from cohort_shared.state.reads import pack


def test_packing_equals_redis_py_for_every_kind_of_argument():
    commands = [("HMGET", "p{segment-store:3}:un:ws:0a1", "user-1", "ünïcode", b"\x00raw\r\n", 17),
                ("GET", "p{segment-store:3}:seq:ws"), ("HGET", "k", "")]
    connection = redis.Connection()
    expected = b"".join(b"".join(connection.pack_command(*args)) for args in commands)
    assert pack(commands) == expected
