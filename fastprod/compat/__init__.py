"""Drop-ins for code written against other Python Kafka clients: change one import.

- ``fastprod.compat.confluent.Producer``: confluent-kafka's ``Producer(conf)``
  (librdkafka config names, ``produce``/``poll``/``flush``, callbacks as ``(err, msg)``
  on the thread that calls ``poll``);
- ``fastprod.compat.kafka_python.KafkaProducer``: kafka-python's ``KafkaProducer(**configs)``
  (its keyword names, ``send`` -> a future with ``get``/``add_callback``/``add_errback``).

Both translate their names to the Java names fastprod uses and refuse, with a
ConfigError naming the closest Java key, a setting that has no equivalent, rather than
ignoring it. Underneath is a ``fastprod.Producer`` (``.producer``), so the Java
producer's guarantees and defaults apply (acks=all, idempotence on), not librdkafka's or
kafka-python's.
"""

from __future__ import annotations

from typing import Any


def buffer_would_block(producer: Any, value: Any, key: Any) -> bool:
    """True when a send() of this record could wait for buffer.memory: too little free
    memory to open a batch of batch.size plus the record (appending to an open batch
    needs none; a value a serializer has yet to turn into bytes counts as batch.size)."""
    pool = producer._accumulator.pool
    if pool.queued:
        return True
    batch_size = producer.config.batch_size
    size = len(value) if type(value) is bytes else 0 if value is None else batch_size
    size += len(key) if type(key) is bytes else 0 if key is None else batch_size
    return pool.available_memory < batch_size + size
