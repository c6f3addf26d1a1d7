"""The hot reads' own RESP packing says exactly what redis-py's would."""

import pytest
import redis
from cohort_shared.state.wire import pack
from redis.exceptions import DataError


def test_packing_equals_redis_py_for_every_kind_of_argument():
    commands = [("HMGET", "p{segment-store:3}:un:ws:0a1", "user-1", "ünïcode", b"\x00raw\r\n", 17, -2**70),
                ("GET", "p{segment-store:3}:seq:ws"), ("HGET", "k", ""), ("SET", "k", 0.1),
                ("SET", "k", memoryview(b"view"))]
    connection = redis.Connection()
    expected = b"".join(b"".join(connection.pack_command(*args)) for args in commands)
    assert pack(commands) == expected


def test_none_booleans_and_other_objects_are_refused_as_redis_py_refuses_them():
    for wrong in (None, True, object()):
        with pytest.raises(DataError):
            pack([("HSET", "k", "f", wrong)])
        with pytest.raises(DataError):
            redis.Connection().pack_command("HSET", "k", "f", wrong)
