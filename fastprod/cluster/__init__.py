"""Brokers, connections and metadata: who leads which partition, and how to reach it."""
