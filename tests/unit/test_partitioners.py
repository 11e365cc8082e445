"""fastprod.partitioners: the built-in (KIP-794) partitioner, RoundRobin, UniformSticky,
custom partitioners and their resolution. Pure unit tests on hand-built snapshots."""

from __future__ import annotations

import collections
import itertools
import random
import sys
import types

import pytest

from fastprod import kernels
from fastprod.cluster.snapshot import ClusterSnapshot, Node, PartitionInfo
from fastprod.errors import ConfigError
from fastprod.partitioners import (
    UNKNOWN_PARTITION,
    BuiltInPartitioner,
    CallablePartitioner,
    Partitioner,
    PartitionerConfig,
    RoundRobinPartitioner,
    StickyPartitionCache,
    UniformStickyPartitioner,
    check_partition,
    record_partition,
    resolve_partitioner,
    uses_on_new_batch,
)


def snapshot(leaders: dict[str, list[int]], version: int = 1) -> ClusterSnapshot:
    """Topics with one partition per entry of leaders[topic]; -1 means no leader."""
    nodes = {i: Node(i, "localhost", 9092 + i) for i in range(3)}
    topics = {t: tuple(PartitionInfo(t, p, leader) for p, leader in enumerate(ls))
              for t, ls in leaders.items()}
    return ClusterSnapshot(version=version, cluster_id="c", controller_id=0, nodes=nodes,
                           topics=topics)


class ScriptedRandom:
    """Stands in for random.Random: getrandbits returns the given values in turn."""

    def __init__(self, values):
        self.values = list(values)
        self.i = 0

    def getrandbits(self, k):
        assert k == 31
        value = self.values[self.i % len(self.values)]
        self.i += 1
        return value


SIX = snapshot({"t": [0, -1, 1, 0, -1, 1]})  # partitions 1 and 4 have no leader
AVAILABLE = {0, 2, 3, 5}


# --- keyed records ---

@pytest.mark.parametrize("key", [b"", b"a", b"key-1", b"\x00\xff" * 20, bytes(range(256))])
@pytest.mark.parametrize("n", [1, 3, 6, 1000])
def test_keyed_partition_is_the_kernel(key, n):
    assert BuiltInPartitioner.partition_for_key(key, n) == kernels.partition_for_key(key, n)


def test_record_partition_order():
    snap = snapshot({"t": [0] * 12})
    key = b"user-42"
    expected = kernels.partition_for_key(key, 12)
    assert record_partition("t", None, "k", key, "v", b"v", snap, None) == expected
    # an explicit partition wins, even over the key
    assert record_partition("t", 3, "k", key, "v", b"v", snap, None) == 3
    # no key, or keys ignored: the accumulator's sticky partition decides
    assert record_partition("t", None, None, None, "v", b"v", snap, None) == UNKNOWN_PARTITION
    assert record_partition("t", None, "k", key, "v", b"v", snap, None,
                            ignore_keys=True) == UNKNOWN_PARTITION
    # a configured partitioner decides whatever the key
    p = CallablePartitioner(lambda topic, kb, n: 7)
    assert record_partition("t", None, "k", key, "v", b"v", snap, p) == 7
    assert record_partition("t", 2, "k", key, "v", b"v", snap, p) == 2


def test_record_partition_checks_the_partitioner():
    snap = snapshot({"t": [0] * 4})
    with pytest.raises(ValueError, match=r"partition 4 of topic 't'.*\[0\.\.\.4\)"):
        record_partition("t", None, None, None, None, b"v", snap,
                         CallablePartitioner(lambda t, kb, n: n))
    with pytest.raises(ValueError, match="partition -1"):
        record_partition("t", None, None, None, None, b"v", snap,
                         CallablePartitioner(lambda t, kb, n: -1))


# --- the built-in sticky partitioner ---

def test_sticky_batch_size_must_be_positive():
    with pytest.raises(ValueError):
        BuiltInPartitioner("t", 0)


def test_sticky_until_batch_size_then_switch():
    bip = BuiltInPartitioner("t", 100, rng=random.Random(1))
    first = bip.peek_partition(SIX)
    assert first in AVAILABLE
    for _ in range(9):  # 90 bytes: stay
        assert bip.update_partition_info(10, SIX, True) is False
        assert bip.peek_partition(SIX) == first
    assert bip.produced_bytes == 90
    assert bip.update_partition_info(10, SIX, True) is True  # 100 bytes: switch
    assert bip.produced_bytes == 0
    assert bip.peek_partition(SIX) in AVAILABLE


def test_switch_postponed_until_twice_batch_size():
    bip = BuiltInPartitioner("t", 100, rng=random.Random(2))
    bip.peek_partition(SIX)
    assert not bip.update_partition_info(150, SIX, enforce_switch=False)
    assert bip.produced_bytes == 150
    # the accumulator completes a postponed switch once the queue's batches are full
    assert bip.update_partition_info(0, SIX, enforce_switch=True)
    bip.peek_partition(SIX)
    assert not bip.update_partition_info(199, SIX, enforce_switch=False)
    assert bip.update_partition_info(1, SIX, enforce_switch=False)  # 2 * batch.size
    bip.peek_partition(SIX)
    assert not bip.update_partition_info(199, SIX)  # the default is enforce_switch=False
    assert bip.update_partition_info(1, SIX)


def test_update_before_peek_is_a_no_op():
    bip = BuiltInPartitioner("t", 100, rng=random.Random(0))
    assert bip.sticky_partition == UNKNOWN_PARTITION
    assert bip.update_partition_info(1000, SIX, True) is False
    assert bip.produced_bytes == 0


def test_switches_only_to_partitions_with_a_leader():
    bip = BuiltInPartitioner("t", 10, rng=random.Random(3))
    seen = collections.Counter()
    for _ in range(4000):
        seen[bip.peek_partition(SIX)] += 1
        bip.update_partition_info(10, SIX, True)
    assert set(seen) == AVAILABLE
    for partition in AVAILABLE:  # uniform: 1000 each on average
        assert 850 < seen[partition] < 1150


def test_follows_the_snapshot_it_is_given():
    bip = BuiltInPartitioner("t", 10, rng=random.Random(4))
    only_3 = snapshot({"t": [-1, -1, -1, 2, -1, -1]}, version=2)
    bip.peek_partition(SIX)
    for _ in range(50):
        bip.update_partition_info(10, only_3, True)
        assert bip.peek_partition(only_3) == 3


def test_no_partition_has_a_leader():
    bip = BuiltInPartitioner("t", 10, rng=random.Random(5))
    none = snapshot({"t": [-1, -1, -1]})
    seen = set()
    for _ in range(200):
        seen.add(bip.peek_partition(none))
        bip.update_partition_info(10, none, True)
    assert seen == {0, 1, 2}  # as Java: any partition rather than none
    with pytest.raises(ValueError, match="no partitions"):
        BuiltInPartitioner("other", 10).peek_partition(none)


def test_same_choices_as_java_with_the_same_random_numbers():
    # Apache Kafka 4.3.1's BuiltInPartitioner, with randomPartition() overridden to return
    # these numbers, on this topic (batch size 100), printed this sequence of sticky
    # partitions for the same peek/update/load-stats calls.
    rands = [5, 123456789, 7, 2147483647, 0, 99, 31337, 424242, 17, 1000000007, 3, 8, 11,
             2000000000, 65536, 12]
    bip = BuiltInPartitioner("t", 100, rng=ScriptedRandom(rands))
    out = [bip.peek_partition(SIX)]
    for appended, enable in [(60, 1), (30, 1), (20, 1), (50, 0), (60, 0), (90, 0), (10, 0),
                             (100, 1), (0, 1), (250, 0)]:
        bip.peek_partition(SIX)
        bip.update_partition_info(appended, SIX, bool(enable))
        out.append(bip.peek_partition(SIX))
    bip.update_partition_load_stats([3, 0, 1, 5], [0, 2, 3, 5], 4)
    out.append(("end", bip.load_stats_range_end()))
    for _ in range(8):
        bip.peek_partition(SIX)
        bip.update_partition_info(100, SIX, True)
        out.append(bip.peek_partition(SIX))
    bip.update_partition_load_stats([2, 2, 2, 2], [0, 2, 3, 5], 3)
    out.append(("end", bip.load_stats_range_end()))
    for _ in range(6):
        bip.peek_partition(SIX)
        bip.update_partition_info(100, SIX, True)
        out.append(bip.peek_partition(SIX))
    assert out == [2, 2, 2, 2, 2, 2, 5, 5, 5, 5, 0, ("end", 15), 3, 0, 3, 0, 0, 2, 2, 3,
                   ("end", 3), 3, 2, 0, 3, 0, 2]


# --- adaptive partitioning ---

def test_load_stats_weights_exactly():
    # queue sizes 0 5 10 2 -> weights (max + 1 - size) 11 6 1 9 -> CFT 11 17 18 27
    bip = BuiltInPartitioner("t", 1, rng=ScriptedRandom(range(27)))
    bip.update_partition_load_stats([0, 5, 10, 2], [0, 2, 3, 5], 4)
    assert bip.load_stats_range_end() == 27
    seen = collections.Counter()
    bip.peek_partition(SIX)  # consumes random 0
    seen[bip.sticky_partition] += 1
    for _ in range(26):
        bip.update_partition_info(1, SIX, True)
        seen[bip.sticky_partition] += 1
    assert seen == {0: 11, 2: 6, 3: 1, 5: 9}


def test_adaptive_prefers_short_queues():
    bip = BuiltInPartitioner("t", 1, rng=random.Random(6))
    bip.update_partition_load_stats([8, 0, 4, 1], [0, 2, 3, 5], 4)
    seen = collections.Counter()
    for _ in range(27000):
        seen[bip.peek_partition(SIX)] += 1
        bip.update_partition_info(1, SIX, True)
    # weights 1 9 5 8 out of 23
    assert seen[2] > seen[5] > seen[3] > seen[0]
    for partition, weight in {0: 1, 2: 9, 3: 5, 5: 8}.items():
        assert seen[partition] == pytest.approx(27000 * weight / 23, rel=0.06)


def test_load_stats_fall_back_to_uniform():
    bip = BuiltInPartitioner("t", 1)
    bip.update_partition_load_stats([1, 3], [0, 2], 2)
    assert bip.load_stats_range_end() == 4  # weights 3 and 1
    bip.update_partition_load_stats(None, None, 0)  # adaptive off / not all queues yet
    assert bip.load_stats_range_end() is None
    bip.update_partition_load_stats([1, 3], [0, 2], 2)
    bip.update_partition_load_stats([4], [0], 1)  # fewer than 2 partitions
    assert bip.load_stats_range_end() is None
    bip.update_partition_load_stats([1, 3], [0, 2], 2)
    bip.update_partition_load_stats([2, 2, 2], [0, 2, 3], 3)  # all equal
    assert bip.load_stats_range_end() is None
    bip.update_partition_load_stats([1, 3], [0, 2], 2)
    bip.update_partition_load_stats([2, 2, 2], [0, 2, 3], 0)  # every partition excluded
    assert bip.load_stats_range_end() is None


def test_load_stats_with_excluded_partitions():
    # all equal, but one partition was excluded (availability timeout): stay adaptive
    bip = BuiltInPartitioner("t", 1, rng=random.Random(7))
    sizes, ids = [2, 2, 2, 2], [0, 2, 3, 5]
    bip.update_partition_load_stats(sizes, ids, 3)
    assert sizes == [2, 2, 2, 2] and ids == [0, 2, 3, 5]  # inputs are left alone
    assert bip.load_stats_range_end() == 3
    seen = set()
    for _ in range(300):
        seen.add(bip.peek_partition(SIX))
        bip.update_partition_info(1, SIX, True)
    assert seen == {0, 2, 3}  # 5 is excluded
    bip.update_partition_load_stats([0, 9], [2, 3], 1)  # one kept partition still counts
    for _ in range(20):
        bip.update_partition_info(1, SIX, True)
        assert bip.sticky_partition == 2


def test_load_stats_argument_checks():
    bip = BuiltInPartitioner("t", 1)
    with pytest.raises(ValueError):
        bip.update_partition_load_stats([1, 2], [0], 2)
    with pytest.raises(ValueError):
        bip.update_partition_load_stats([1, 2], [0, 1], 3)


def test_partitioner_config():
    assert PartitionerConfig.from_config({}) == PartitionerConfig(True, 0, False)
    cfg = PartitionerConfig.from_config({
        "partitioner.adaptive.partitioning.enable": False,
        "partitioner.availability.timeout.ms": 250,
        "partitioner.ignore.keys": True,
    })
    assert cfg == PartitionerConfig(False, 250, True)


# --- RoundRobinPartitioner ---

def rr(p, topic, snap):
    return p.partition(topic, None, None, None, None, snap)


def test_round_robin_cycles_over_available_partitions_per_topic():
    snap = snapshot({"t": [0, -1, 1, 0, -1, 1], "u": [0, 0, 0]})
    p = RoundRobinPartitioner()
    assert [rr(p, "t", snap) for _ in range(9)] == [0, 2, 3, 5, 0, 2, 3, 5, 0]
    # each topic has its own counter
    assert [rr(p, "u", snap) for _ in range(4)] == [0, 1, 2, 0]
    assert rr(p, "t", snap) == 2
    # keys do not matter
    assert p.partition("u", "k", b"k", "v", b"v", snap) == 1


def test_round_robin_without_leaders_and_wrap():
    none = snapshot({"t": [-1, -1, -1]})
    p = RoundRobinPartitioner()
    assert [rr(p, "t", none) for _ in range(4)] == [0, 1, 2, 0]
    # Java's AtomicInteger wraps to negative and toPositive masks the sign bit
    p._counters["t"] = itertools.count(2**31 - 1)
    assert [rr(p, "t", none) for _ in range(2)] == [(2**31 - 1) % 3, 0]
    assert not uses_on_new_batch(p)


def test_round_robin_same_as_java():
    # Apache Kafka 4.3.1's RoundRobinPartitioner on the same topic printed 0 2 3 5 0 2 ...
    p = RoundRobinPartitioner()
    assert [rr(p, "t", SIX) for _ in range(10)] == [0, 2, 3, 5, 0, 2, 3, 5, 0, 2]


# --- UniformStickyPartitioner / StickyPartitionCache ---

def test_uniform_sticky():
    p = UniformStickyPartitioner(rng=random.Random(8))
    assert uses_on_new_batch(p)
    first = rr(p, "t", SIX)
    assert first in AVAILABLE
    assert all(p.partition("t", "k", b"k", None, None, SIX) == first for _ in range(20))
    # a new batch on another partition (a keyed record's, or stale) changes nothing
    other = next(iter(AVAILABLE - {first}))
    p.on_new_batch("t", SIX, other)
    assert rr(p, "t", SIX) == first
    # a new batch on the sticky partition moves to a different available partition
    seen = set()
    current = first
    for _ in range(200):
        p.on_new_batch("t", SIX, current)
        new = rr(p, "t", SIX)
        assert new != current and new in AVAILABLE
        seen.add(new)
        current = new
    assert seen == AVAILABLE


def test_sticky_cache_single_and_no_available():
    cache = StickyPartitionCache(rng=random.Random(9))
    one = snapshot({"t": [-1, -1, 1]})
    assert cache.partition("t", one) == 2
    assert cache.next_partition("t", one, 2) == 2  # the only one, even if unchanged
    none = snapshot({"u": [-1, -1, -1, -1]})
    assert cache.partition("u", none) in range(4)


def test_uniform_sticky_with_accumulator_dance():
    # Java 3.x doSend: partition, append (abort if a new batch is needed), on_new_batch,
    # partition again. The record that triggers the new batch lands on the new partition.
    p = UniformStickyPartitioner(rng=random.Random(10))
    first = rr(p, "t", SIX)
    p.on_new_batch("t", SIX, first)
    second = rr(p, "t", SIX)
    assert second != first


# --- custom partitioners and resolution ---

class Fixed(Partitioner):
    def __init__(self):
        self.configs = None
        self.closed = False

    def configure(self, configs):
        self.configs = configs

    def partition(self, topic, key, key_bytes, value, value_bytes, snapshot):
        return len(snapshot.partitions_for_topic(topic)) - 1

    def close(self):
        self.closed = True


class Duck:
    def __init__(self):
        self.batches = []

    def partition(self, topic, key, key_bytes, value, value_bytes, snapshot):
        return 1

    def on_new_batch(self, topic, snapshot, prev_partition):
        self.batches.append(prev_partition)


def by_first_byte(topic, key_bytes, num_partitions):
    return key_bytes[0] % num_partitions


def test_resolve_none_is_builtin():
    assert resolve_partitioner(None) is None


def test_resolve_java_names():
    for name in ("org.apache.kafka.clients.producer.RoundRobinPartitioner",
                 "RoundRobinPartitioner", "round_robin"):
        assert type(resolve_partitioner(name)) is RoundRobinPartitioner
    for name in ("org.apache.kafka.clients.producer.UniformStickyPartitioner",
                 "UniformStickyPartitioner", "uniform_sticky"):
        assert type(resolve_partitioner(name)) is UniformStickyPartitioner
    with pytest.raises(ConfigError, match="removed in Kafka 4.0"):
        resolve_partitioner("org.apache.kafka.clients.producer.internals.DefaultPartitioner")


def test_resolve_instance_class_and_configure():
    inst = Fixed()
    assert resolve_partitioner(inst, {"a": 1}) is inst
    assert inst.configs is None  # instances are used as given
    p = resolve_partitioner(Fixed, {"client.id": "me"})
    assert isinstance(p, Fixed) and p.configs == {"client.id": "me"}
    snap = snapshot({"t": [0] * 5})
    assert p.partition("t", None, None, None, None, snap) == 4
    assert not uses_on_new_batch(p)


def test_resolve_callable():
    p = resolve_partitioner(by_first_byte)
    assert isinstance(p, CallablePartitioner)
    snap = snapshot({"t": [0] * 5})
    assert p.partition("t", "k", b"\x07", None, None, snap) == 2
    assert record_partition("t", None, "k", b"\x09", None, None, snap, p) == 4
    p.close()  # optional methods exist
    assert not uses_on_new_batch(p)


def test_resolve_duck_typed_object():
    duck = Duck()
    p = resolve_partitioner(duck)
    assert isinstance(p, Partitioner)
    assert p.partition("t", None, None, None, None, SIX) == 1
    assert uses_on_new_batch(p)
    p.on_new_batch("t", SIX, 3)
    assert duck.batches == [3]
    p.close()


def test_resolve_module_colon_name(monkeypatch):
    mod = types.ModuleType("fp_test_partmod")
    mod.Fixed = Fixed
    mod.by_first_byte = by_first_byte
    mod.Duck = Duck
    monkeypatch.setitem(sys.modules, "fp_test_partmod", mod)
    assert isinstance(resolve_partitioner("fp_test_partmod:Fixed", {}), Fixed)
    assert isinstance(resolve_partitioner("fp_test_partmod:by_first_byte"), CallablePartitioner)
    assert uses_on_new_batch(resolve_partitioner("fp_test_partmod:Duck"))


@pytest.mark.parametrize("spec,match", [
    ("RoundRobin", "did you mean .*'RoundRobinPartitioner'"),
    ("nonexistent_mod_abc:P", "cannot import module"),
    ("json:NoSuchThing", "has no attribute"),
    ("json:__name__", "names a string"),
    (42, "is not a partitioner"),
    (int, "has no partition"),
])
def test_resolve_bad_specs(spec, match):
    with pytest.raises(ConfigError, match=match) as info:
        resolve_partitioner(spec)
    assert "partitioner.class" in str(info.value)


def test_check_partition():
    assert check_partition(0, 1) == 0
    assert check_partition(5, 6, "t") == 5
    with pytest.raises(ValueError, match=r"partition 6 of topic 't'.*\[0\.\.\.6\)"):
        check_partition(6, 6, "t")
    with pytest.raises(ValueError, match="partition -1"):
        check_partition(-1, 6)
    with pytest.raises(TypeError, match="expected an int"):
        check_partition(1.0, 6)
    with pytest.raises(TypeError):
        check_partition(None, 6)
    with pytest.raises(TypeError):
        check_partition(True, 6)
