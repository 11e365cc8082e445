"""The producer core: accumulator, batches, sender and sequence state.

One engine, used in-process by ``Producer`` and inside each worker process by
``ShardedProducer``. Names follow the Java client's producer internals.
"""
