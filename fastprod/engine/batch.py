"""ProducerBatch: the records of one partition on their way into one record batch v2.

It is touched once per record, so it lives in C (fastprod/_ext/accumulate.pyx); this
module names it for the engine.
"""

from fastprod._ext.accumulate import ProducerBatch

__all__ = ["ProducerBatch"]
