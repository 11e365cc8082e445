"""Choosing the partition of a record, as the Java producer does.

The order is Java's ``KafkaProducer.partition()`` (see ``record_partition``):

1. a partition given to ``send()`` wins;
2. else a configured partitioner (``partitioner.class``) decides;
3. else a non-null key picks ``murmur2(key) % partitions`` (``partition_for_key``),
   unless ``partitioner.ignore.keys`` is true;
4. else the record gets ``UNKNOWN_PARTITION`` and the accumulator places it on the
   topic's sticky partition, chosen by its ``BuiltInPartitioner`` (KIP-794).

**The built-in partitioner** (``BuiltInPartitioner``, one per topic, owned by the
accumulator) sticks to one partition until ``batch.size`` bytes were appended to it, then
switches to a random partition that has a leader, or, with adaptive partitioning (the
default), to one drawn with a weight that grows as its queue of batches shrinks. The
accumulator calls it like Java's ``RecordAccumulator.append`` does, all under the
accumulator's lock::

    while True:
        if partition == UNKNOWN_PARTITION:
            p = bip.peek_partition(snapshot)                       # 1. which queue
        deque = batches_of(topic, p)
        if partition == UNKNOWN_PARTITION and all_batches_full(deque):
            # 2. complete a switch that an earlier append postponed
            if bip.update_partition_info(0, snapshot, enforce_switch=True):
                continue                                           #    moved: peek again
        appended_bytes = append the record to deque                # 3. (new batch if needed)
        if partition == UNKNOWN_PARTITION:
            bip.update_partition_info(appended_bytes, snapshot,    # 4. count, maybe switch
                                      enforce_switch=all_batches_full(deque))
        break

and in ``ready()``, for each topic, it feeds the queue sizes of the partitions that have
a leader to ``update_partition_load_stats`` (see that method for how Java builds them).

**Configured partitioners** implement ``Partitioner``: ``partition(topic, key, key_bytes,
value, value_bytes, snapshot) -> int``, ``close()``, and optionally ``configure(configs)``
and ``on_new_batch(topic, snapshot, prev_partition)``. A plain function
``fn(topic, key_bytes, num_partitions) -> int`` is also accepted (``CallablePartitioner``).
``RoundRobinPartitioner`` and ``UniformStickyPartitioner`` are the Java classes of those
names. Kafka 4.0 removed ``onNewBatch`` and ``UniformStickyPartitioner`` from the Java
client; they are kept here as Java 3.x had them. When ``uses_on_new_batch(partitioner)``
is true, the producer follows Java 3.x's ``doSend``: append with "abort on new batch"; if
the append would have opened a new batch, call ``on_new_batch(topic, snapshot, p)``,
partition the record again and append for real. Partitioners without ``on_new_batch``
are called once per record.

The partitioners here take their randomness from an injectable ``random.Random`` so
tests are deterministic; Java's ``Utils.toPositive(ThreadLocalRandom.nextInt())`` is
``rng.getrandbits(31)``, and partitions are then picked with the same ``% n`` arithmetic.
"""

from __future__ import annotations

import bisect
import difflib
import itertools
import logging
import random
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from fastprod.cluster.snapshot import ClusterSnapshot
from fastprod.config import import_module_attr
from fastprod.errors import ConfigError
from fastprod._ext.accumulate import StickyState
from fastprod.kernels import partition_for_key

__all__ = [
    "BuiltInPartitioner",
    "CallablePartitioner",
    "Partitioner",
    "PartitionerConfig",
    "RoundRobinPartitioner",
    "StickyPartitionCache",
    "UNKNOWN_PARTITION",
    "UniformStickyPartitioner",
    "check_partition",
    "partition_for_key",
    "record_partition",
    "resolve_partitioner",
    "uses_on_new_batch",
]

log = logging.getLogger(__name__)

# Java's RecordMetadata.UNKNOWN_PARTITION: "let the accumulator pick the sticky partition".
UNKNOWN_PARTITION = -1

_INT31 = 0x7FFFFFFF  # Utils.toPositive


def _random31(rng: random.Random) -> int:
    """Java's ``Utils.toPositive(ThreadLocalRandom.current().nextInt())``."""
    return rng.getrandbits(31)


def _no_partitions(topic: str, snapshot: ClusterSnapshot) -> ValueError:
    return ValueError(f"topic {topic!r} has no partitions in metadata snapshot "
                      f"version {snapshot.version}")


# --- configuration of the built-in partitioner ---

@dataclass(frozen=True, slots=True)
class PartitionerConfig:
    """The ``partitioner.*`` settings the producer and accumulator need (Java's
    ``RecordAccumulator.PartitionerConfig`` plus ``partitioner.ignore.keys``).

    They only apply when no ``partitioner.class`` is configured, as in Java.
    """

    enable_adaptive_partitioning: bool = True  # partitioner.adaptive.partitioning.enable
    partition_availability_timeout_ms: int = 0  # partitioner.availability.timeout.ms
    ignore_keys: bool = False  # partitioner.ignore.keys

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "PartitionerConfig":
        """Read the validated ``partitioner.*`` values (Java names) from a config mapping."""
        return cls(
            enable_adaptive_partitioning=bool(
                config.get("partitioner.adaptive.partitioning.enable", True)),
            partition_availability_timeout_ms=int(
                config.get("partitioner.availability.timeout.ms", 0)),
            ignore_keys=bool(config.get("partitioner.ignore.keys", False)),
        )


# --- the built-in partitioner (KIP-794) ---

class BuiltInPartitioner:
    """Java's ``BuiltInPartitioner``: the sticky partition of one topic for records
    without a partition (and without a key, or with ``partitioner.ignore.keys``).

    Threading: one instance per topic, owned by the accumulator; every method is called
    with the accumulator's lock held, so there is no compare-and-set and no
    "partition changed by a concurrent append" check as in Java. Whoever holds the lock
    sees the sticky partition only change through ``peek_partition`` (first choice) and
    ``update_partition_info`` (switch), which returns True when it switched.
    """

    __slots__ = ("topic", "sticky_batch_size", "_rng", "state",
                 "_cft", "_load_ids")

    partition_for_key = staticmethod(partition_for_key)

    def __init__(self, topic: str, sticky_batch_size: int, *,
                 rng: Optional[random.Random] = None) -> None:
        if sticky_batch_size < 1:
            raise ValueError(f"sticky_batch_size must be >= 1 but got {sticky_batch_size}")
        self.topic = topic
        self.sticky_batch_size = sticky_batch_size  # batch.size
        self._rng = rng if rng is not None else random.Random()
        # The current sticky partition (-1 before the first) and the bytes appended to
        # it, in a C struct that Producer.send's fast path reads and bumps directly
        # (under the accumulator's lock, like every method here).
        self.state = StickyState()
        # adaptive load stats: cumulative frequency table and the partition of each slot
        self._cft: Optional[tuple[int, ...]] = None
        self._load_ids: tuple[int, ...] = ()

    @property
    def _partition(self) -> int:
        return self.state.partition

    @_partition.setter
    def _partition(self, value: int) -> None:
        self.state.partition = value

    @property
    def _produced_bytes(self) -> int:
        return self.state.produced_bytes

    @_produced_bytes.setter
    def _produced_bytes(self, value: int) -> None:
        self.state.produced_bytes = value

    @property
    def sticky_partition(self) -> int:
        """The current sticky partition, or ``UNKNOWN_PARTITION`` before the first peek."""
        return self._partition

    @property
    def produced_bytes(self) -> int:
        """Bytes appended to the current sticky partition since it was chosen."""
        return self._produced_bytes

    def peek_partition(self, snapshot: ClusterSnapshot) -> int:
        """The sticky partition to append to; chosen now if there is none yet."""
        partition = self._partition
        if partition < 0:
            partition = self._switch(snapshot)
        return partition

    def update_partition_info(self, appended_bytes: int, snapshot: ClusterSnapshot,
                              enforce_switch: bool = False) -> bool:
        """Count ``appended_bytes`` towards the sticky partition and maybe switch.

        Call it only for records placed with ``peek_partition``. ``enforce_switch`` is
        Java's ``enableSwitch``: when true, switch once ``batch.size`` bytes were
        appended; the accumulator passes ``all_batches_full(deque)``, so that a switch
        does not leave a half-filled batch behind (Java's comment in
        ``updatePartitionInfo``). Whatever it is, switch at twice ``batch.size``.
        Returns True when the sticky partition was replaced (possibly by the same
        partition again: the next one is random, as in Java).
        """
        if self._partition < 0:
            return False
        produced = self._produced_bytes + appended_bytes
        self._produced_bytes = produced
        size = self.sticky_batch_size
        if (produced >= size and enforce_switch) or produced >= 2 * size:
            self._switch(snapshot)
            return True
        return False

    def update_partition_load_stats(self, queue_sizes: Optional[Sequence[int]],
                                    partition_ids: Optional[Sequence[int]],
                                    length: int) -> None:
        """Java's ``updatePartitionLoadStats``: weights for adaptive partitioning.

        ``queue_sizes[i]`` is the number of batches queued for partition
        ``partition_ids[i]``; only the first ``length`` entries are used (partitions left
        out by ``partitioner.availability.timeout.ms`` shorten ``length``). Pass None
        (adaptive partitioning off, or not every partition has a queue yet) to switch
        uniformly. The accumulator builds them in ``ready()`` as Java's
        ``partitionReady``: only when adaptive partitioning is enabled and the topic has
        a queue for every partition (else None); one slot per queue whose partition has
        a leader now, in queue order, holding that queue's length (0 when empty); a slot
        whose leader's node has been ready but not drained for longer than
        ``partitioner.availability.timeout.ms`` (if > 0) is dropped by reusing it for
        the next partition, so ``length`` is the number of slots kept.

        With fewer than 2 slots in all, no slot kept, or all queues equally long and
        none dropped, switching is uniform. Otherwise each kept partition gets weight
        ``max_queue + 1 - its_queue`` and the next partition is drawn with probability
        proportional to its weight.
        """
        if queue_sizes is None:
            self._cft = None
            return
        if partition_ids is None or len(queue_sizes) != len(partition_ids):
            raise ValueError("queue_sizes and partition_ids must have the same length")
        if not 0 <= length <= len(queue_sizes):
            raise ValueError(f"length {length} is outside [0, {len(queue_sizes)}]")
        if length < 1 or len(queue_sizes) < 2:
            self._cft = None
            return
        sizes = queue_sizes[:length]
        max_size = max(sizes)
        if length == len(queue_sizes) and min(sizes) == max_size:
            self._cft = None
            return
        max_plus_1 = max_size + 1
        self._cft = tuple(itertools.accumulate(max_plus_1 - s for s in sizes))
        self._load_ids = tuple(partition_ids[:length])

    def load_stats_range_end(self) -> Optional[int]:
        """The end of the weighted random range, None when switching is uniform (tests)."""
        return None if self._cft is None else self._cft[-1]

    def _switch(self, snapshot: ClusterSnapshot) -> int:
        partition = self._next_partition(snapshot)
        self._partition = partition
        self._produced_bytes = 0
        return partition

    def _next_partition(self, snapshot: ClusterSnapshot) -> int:
        r = _random31(self._rng)
        cft = self._cft
        if cft is None:
            available = snapshot.available_partitions_for_topic(self.topic)
            if available:
                return available[r % len(available)].partition
            # No partition has a leader: pick among all of them, as Java does.
            count = len(snapshot.partitions_for_topic(self.topic))
            if count == 0:
                raise _no_partitions(self.topic, snapshot)
            return r % count
        # Partitions without a leader are not in the load stats. The first entry strictly
        # greater than the weighted random number: Java's binarySearch + abs(result + 1).
        return self._load_ids[bisect.bisect_right(cft, r % cft[-1])]


# --- the Partitioner interface for partitioner.class ---

class Partitioner:
    """Base class of configured partitioners (Java's ``Partitioner`` interface).

    Subclasses implement ``partition``; the other methods are optional. A class given as
    ``partitioner.class`` is instantiated with no arguments and then ``configure``\\ d
    with the producer's config (Java names). A partitioner may be called from several
    threads at once (``send()`` is thread-safe), so keep its state thread-safe.
    """

    def configure(self, configs: Mapping[str, Any]) -> None:
        """Called once after instantiation from ``partitioner.class``."""

    def partition(self, topic: str, key: Any, key_bytes: Optional[bytes], value: Any,
                  value_bytes: Optional[bytes], snapshot: ClusterSnapshot) -> int:
        """The partition of the record: an int in ``[0, partition count)``."""
        raise NotImplementedError

    def close(self) -> None:
        """Called when the producer closes."""

    def on_new_batch(self, topic: str, snapshot: ClusterSnapshot, prev_partition: int) -> None:
        """(Java 3.x, optional) The record partitioned to ``prev_partition`` needs a new
        batch; ``partition`` is called again for it right after this returns."""


def uses_on_new_batch(partitioner: Any) -> bool:
    """True when ``partitioner`` overrides ``on_new_batch``: the producer then does Java
    3.x's abort-on-new-batch dance for it (see the module docstring)."""
    method = getattr(partitioner, "on_new_batch", None)
    if method is None:
        return False
    return getattr(method, "__func__", method) is not Partitioner.on_new_batch


class StickyPartitionCache:
    """Java's ``StickyPartitionCache`` (KIP-480): one sticky partition per topic that
    changes only when a new batch is started on it. Thread-safe."""

    def __init__(self, *, rng: Optional[random.Random] = None) -> None:
        self._rng = rng if rng is not None else random.Random()
        self._index: dict[str, int] = {}
        self._lock = threading.Lock()

    def partition(self, topic: str, snapshot: ClusterSnapshot) -> int:
        part = self._index.get(topic)
        if part is None:
            return self.next_partition(topic, snapshot, UNKNOWN_PARTITION)
        return part

    def next_partition(self, topic: str, snapshot: ClusterSnapshot, prev_partition: int) -> int:
        with self._lock:
            old = self._index.get(topic)
            # Change only when unset, or when the batch that filled up is on the sticky
            # partition (not a keyed record's, and not one another thread already replaced).
            if old is not None and old != prev_partition:
                return old
            available = snapshot.available_partitions_for_topic(topic)
            if not available:
                count = len(snapshot.partitions_for_topic(topic))
                if count == 0:
                    raise _no_partitions(topic, snapshot)
                new = _random31(self._rng) % count
            elif len(available) == 1:
                new = available[0].partition
            else:
                new = -1 if old is None else old
                while new == old or new < 0:
                    new = available[_random31(self._rng) % len(available)].partition
            self._index[topic] = new
            return new


class RoundRobinPartitioner(Partitioner):
    """Java's ``RoundRobinPartitioner``: each record of a topic goes to the next partition
    with a leader (to the next of all partitions when none has a leader), whatever its
    key. One counter per topic, shared by all threads."""

    def __init__(self) -> None:
        self._counters: dict[str, itertools.count[int]] = {}

    def partition(self, topic: str, key: Any, key_bytes: Optional[bytes], value: Any,
                  value_bytes: Optional[bytes], snapshot: ClusterSnapshot) -> int:
        counter = self._counters.get(topic)
        if counter is None:
            counter = self._counters.setdefault(topic, itertools.count())
        # Java's AtomicInteger wraps at 2**31 and toPositive masks the sign bit.
        n = next(counter) & _INT31
        available = snapshot.available_partitions_for_topic(topic)
        if available:
            return available[n % len(available)].partition
        count = len(snapshot.partitions_for_topic(topic))
        if count == 0:
            raise _no_partitions(topic, snapshot)
        return n % count


class UniformStickyPartitioner(Partitioner):
    """Java 3.x's ``UniformStickyPartitioner`` (deprecated in 3.3, removed in 4.0): keys
    are ignored; each topic sticks to one partition until a new batch is needed
    (``on_new_batch``). The built-in partitioner with ``partitioner.ignore.keys=true``
    does this better (it switches after ``batch.size`` bytes, and adapts to load)."""

    def __init__(self, *, rng: Optional[random.Random] = None) -> None:
        self._cache = StickyPartitionCache(rng=rng)

    def partition(self, topic: str, key: Any, key_bytes: Optional[bytes], value: Any,
                  value_bytes: Optional[bytes], snapshot: ClusterSnapshot) -> int:
        return self._cache.partition(topic, snapshot)

    def on_new_batch(self, topic: str, snapshot: ClusterSnapshot, prev_partition: int) -> None:
        self._cache.next_partition(topic, snapshot, prev_partition)


class CallablePartitioner(Partitioner):
    """Adapts a function ``fn(topic, key_bytes, num_partitions) -> int``."""

    def __init__(self, fn: Callable[[str, Optional[bytes], int], int]) -> None:
        self.fn = fn

    def partition(self, topic: str, key: Any, key_bytes: Optional[bytes], value: Any,
                  value_bytes: Optional[bytes], snapshot: ClusterSnapshot) -> int:
        return self.fn(topic, key_bytes, len(snapshot.partitions_for_topic(topic)))

    def __repr__(self) -> str:
        return f"CallablePartitioner({_describe(self.fn)})"


class _AdaptedPartitioner(Partitioner):
    """An object with ``partition(...)`` that does not subclass ``Partitioner``: its own
    methods are bound as instance attributes, so calls cost no extra indirection."""

    def __init__(self, obj: Any) -> None:
        self.wrapped = obj
        self.partition = obj.partition  # type: ignore[method-assign]
        for name in ("close", "on_new_batch", "configure"):
            method = getattr(obj, name, None)
            if callable(method):
                setattr(self, name, method)

    def __repr__(self) -> str:
        return f"<adapted {self.wrapped!r}>"


# --- resolving partitioner.class ---

_JAVA_PRODUCER = "org.apache.kafka.clients.producer."
_BUILTIN_CLASSES: dict[str, type] = {}
for _name, _cls in {"RoundRobinPartitioner": RoundRobinPartitioner,
                    "UniformStickyPartitioner": UniformStickyPartitioner}.items():
    _BUILTIN_CLASSES[_name] = _cls
    _BUILTIN_CLASSES[_JAVA_PRODUCER + _name] = _cls
_BUILTIN_CLASSES["round_robin"] = RoundRobinPartitioner
_BUILTIN_CLASSES["uniform_sticky"] = UniformStickyPartitioner
del _name, _cls

_REMOVED = {
    _JAVA_PRODUCER + "internals.DefaultPartitioner",
    "DefaultPartitioner",
}


def _describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    return f"{module}.{name}" if module and module != "builtins" else name


def _from_string(spec: str) -> Any:
    cls = _BUILTIN_CLASSES.get(spec)
    if cls is not None:
        if cls is UniformStickyPartitioner:
            log.warning("UniformStickyPartitioner is deprecated (removed in Kafka 4.0): "
                        "leave partitioner.class unset and set partitioner.ignore.keys=true "
                        "to get uniform sticky partitioning")
        return cls
    if spec in _REMOVED:
        raise ConfigError(
            f"partitioner.class: {spec!r} was removed in Kafka 4.0; leave partitioner.class "
            "unset to get the default partitioning (murmur2 of the key, else sticky)")
    if ":" in spec:
        return import_module_attr(spec, "partitioner.class")
    choices = sorted(_BUILTIN_CLASSES)
    close = difflib.get_close_matches(spec, choices, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(
        f"partitioner.class: unknown partitioner {spec!r}. Expected unset (the built-in "
        f"partitioner), one of {', '.join(choices)}, 'module:Class', a Partitioner "
        f"instance or class, or a function (topic, key_bytes, num_partitions) -> int{hint}")


def resolve_partitioner(spec: Any, config_options: Optional[Mapping[str, Any]] = None
                        ) -> Optional[Partitioner]:
    """The partitioner for ``partitioner.class``, or None for the built-in one.

    ``spec`` is None; a ``Partitioner`` instance (used as is); a class (instantiated with
    no arguments, then ``configure(config_options)`` if it has that method, as Java's
    ``getConfiguredInstance``); an object with a ``partition(topic, key, key_bytes,
    value, value_bytes, snapshot)`` method; a function ``(topic, key_bytes,
    num_partitions) -> int``; ``"module:Name"`` naming any of these; or a Java class name
    (``org.apache.kafka.clients.producer.RoundRobinPartitioner``,
    ``...UniformStickyPartitioner``, also without the package). Raises ``ConfigError``.
    """
    if spec is None:
        return None
    obj = _from_string(spec) if isinstance(spec, str) else spec
    if isinstance(obj, str):  # "module:Name" naming a string
        raise ConfigError(f"partitioner.class: {spec!r} names a string, not a partitioner")
    if isinstance(obj, type):
        cls = obj
        try:
            obj = cls()
        except Exception as exc:
            raise ConfigError(f"partitioner.class: could not instantiate {_describe(cls)} "
                              f"with no arguments: {exc}") from exc
        if not callable(getattr(obj, "partition", None)):
            raise ConfigError(f"partitioner.class: {_describe(cls)} has no "
                              "partition(topic, key, key_bytes, value, value_bytes, "
                              "snapshot) method")
        configure = getattr(obj, "configure", None)
        if callable(configure):
            configure(dict(config_options or {}))
    if isinstance(obj, Partitioner):
        return obj
    if callable(getattr(obj, "partition", None)):
        return _AdaptedPartitioner(obj)
    if callable(obj):
        return CallablePartitioner(obj)
    raise ConfigError(
        f"partitioner.class: {spec!r} is not a partitioner: expected a Partitioner "
        "instance or class, 'module:Class', a Java partitioner class name, or a function "
        "(topic, key_bytes, num_partitions) -> int")


# --- the producer's side ---

def check_partition(partition: Any, num_partitions: int, topic: Optional[str] = None) -> int:
    """``partition`` if it is a valid partition of a topic with ``num_partitions``
    partitions; else ``TypeError`` (not an int) or ``ValueError`` (out of range)."""
    where = f" of topic {topic!r}" if topic is not None else ""
    if type(partition) is not int:
        if isinstance(partition, bool) or not isinstance(partition, int):
            raise TypeError(f"the partitioner returned {type(partition).__name__} "
                            f"{partition!r}{where}, expected an int")
        partition = int(partition)
    if not 0 <= partition < num_partitions:
        raise ValueError(f"the partitioner returned partition {partition}{where}, which is "
                         f"not in the range [0...{num_partitions})")
    return partition  # type: ignore[no-any-return]  # an int: checked above, per record


def record_partition(topic: str, partition: Optional[int], key: Any,
                     key_bytes: Optional[bytes], value: Any, value_bytes: Optional[bytes],
                     snapshot: ClusterSnapshot, partitioner: Optional[Partitioner],
                     ignore_keys: bool = False) -> int:
    """Java's ``KafkaProducer.partition()``: the record's partition, or
    ``UNKNOWN_PARTITION`` for the accumulator's built-in sticky partitioner.

    An explicit ``partition`` is returned unchecked (the producer checks it against the
    metadata, waiting up to ``max.block.ms`` as Java's ``waitOnMetadata``). A configured
    partitioner's answer is checked with ``check_partition`` (Java only rejects negative
    numbers here and leaves a too-large one to time out in the accumulator).
    """
    if partition is not None:
        return partition
    count = len(snapshot.partitions_for_topic(topic))
    if partitioner is not None:
        return check_partition(
            partitioner.partition(topic, key, key_bytes, value, value_bytes, snapshot),
            count, topic)
    if key_bytes is not None and not ignore_keys:
        if count == 0:
            raise _no_partitions(topic, snapshot)
        return partition_for_key(key_bytes, count)
    return UNKNOWN_PARTITION
