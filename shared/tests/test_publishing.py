import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from cohort_shared.publishing import murmur2, partition_for


def test_murmur2_is_the_java_clients():
    # Kafka's own test vectors (clients/src/test/java/.../UtilsTest.java, testMurmur2)
    vectors = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
               b"a-little-bit-longer-string": -1486304829, b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
               bytes([ord("a"), ord("b"), ord("c")]): 479470107}
    for data, expected in vectors.items():
        assert murmur2(data) == expected & 0xFFFFFFFF, data


def test_same_partition_as_aiokafka_for_any_key():
    rng = random.Random(7)
    partitioner = DefaultPartitioner()
    for _ in range(5000):
        key = rng.randbytes(rng.randrange(0, 40))
        assert murmur2(key) == aiokafka_murmur2(key)
        for partitions in (1, 3, 12):
            assert partition_for(key, partitions) == partitioner(key, list(range(partitions)), [])
