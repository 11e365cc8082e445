"""ShardedProducer: partitions sharded across worker processes, fed through
shared-memory rings. See producer.py (the parent) and worker.py."""

from fastprod.sharded.producer import ShardedProducer

__all__ = ["ShardedProducer"]
