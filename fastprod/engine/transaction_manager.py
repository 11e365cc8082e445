"""TransactionManager: producer id, epoch and per-partition sequence numbers.

The idempotence half of Java's TransactionManager (transactions build on it later).
With enable.idempotence the broker keeps the last five batches of each (producer id,
partition) and drops a batch whose sequence it has already written, so retries cannot
duplicate. The rules that keep that promise:

- no batch leaves before InitProducerId gave us an id and epoch;
- sequences are assigned in ``drain`` (under the accumulator's lock), in queue order,
  and a retried batch keeps its sequence;
- a retried batch goes out only when it is the oldest unacknowledged one of its
  partition, so a retry never overtakes the batch before it;
- when a sequence is lost for good (a batch failed or expired after it was sent, or
  the broker reports a gap), the epoch is bumped (KIP-360): wait until nothing is in
  flight, ask InitProducerId again with the current id and epoch, restart every
  partition at sequence 0; queued batches are stamped again as they drain.

Threads: the sender thread only (drain runs on it too).
"""

from __future__ import annotations

import bisect
import logging

from fastprod.engine.batch import ProducerBatch
from fastprod.errors import KafkaError, error_for_code
from fastprod.protocol.messages.init_producer_id import InitProducerIdRequest

log = logging.getLogger("fastprod.engine")

TP = tuple[str, int]
_SEQUENCE_MODULUS = 2**31


class TransactionManager:
    def __init__(self, *, transaction_timeout_ms: int, retry_backoff_ms: int) -> None:
        self.transaction_timeout_ms = transaction_timeout_ms
        self.retry_backoff_ms = retry_backoff_ms
        self.producer_id = -1
        self.producer_epoch = -1
        self.fatal_error: BaseException | None = None
        self._epoch_bump_required = False
        self._init_in_flight = False
        self._next_init_ms = 0
        self._next_sequence: dict[TP, int] = {}
        self._last_acked: dict[TP, int] = {}
        # batches stamped with the current epoch and not yet completed, by sequence
        self._in_flight: dict[TP, list[ProducerBatch]] = {}

    # ---- producer id ----------------------------------------------------------------

    def has_producer_id(self) -> bool:
        return self.producer_id >= 0 and not self._epoch_bump_required

    def needs_init(self, now_ms: int, requests_in_flight: int) -> bool:
        """Whether to send InitProducerId now. A bump waits until no produce request
        of the old epoch is on the wire."""
        if self._init_in_flight or self.fatal_error is not None or now_ms < self._next_init_ms:
            return False
        if self.producer_id < 0:
            return True
        return self._epoch_bump_required and requests_in_flight == 0

    def init_request(self) -> InitProducerIdRequest:
        self._init_in_flight = True
        return InitProducerIdRequest(
            transactional_id=None, transaction_timeout_ms=self.transaction_timeout_ms,
            producer_id=self.producer_id, producer_epoch=self.producer_epoch)

    def handle_init_response(self, response, error: BaseException | None,
                             now_ms: int) -> None:
        self._init_in_flight = False
        if error is None and response.error_code:
            error = error_for_code(response.error_code)
        if error is not None:
            if isinstance(error, KafkaError) and not error.retriable and \
                    not getattr(error, "invalid_metadata", False):
                log.error("InitProducerId failed: %s", error)
                self.fatal_error = error
            else:
                log.info("InitProducerId failed, retrying: %s", error)
                self._next_init_ms = now_ms + self.retry_backoff_ms
            return
        bumped = self.producer_id >= 0
        self.producer_id = response.producer_id
        self.producer_epoch = response.producer_epoch
        self._epoch_bump_required = False
        self._next_sequence.clear()
        self._last_acked.clear()
        self._in_flight.clear()
        log.info("%s producer id %d epoch %d", "bumped to" if bumped else "got",
                 self.producer_id, self.producer_epoch)

    def request_epoch_bump(self, reason: str) -> None:
        if not self._epoch_bump_required:
            log.warning("bumping the producer epoch: %s", reason)
        self._epoch_bump_required = True

    # ---- sequences (called from drain) ----------------------------------------------

    def should_stop_drain(self, first: ProducerBatch, tp: TP) -> bool:
        """Java's shouldStopDrainBatchesForPartition."""
        if not self.has_producer_id():
            return True
        in_flight = self._in_flight.get(tp)
        if self._is_current(first):
            # A retry: it may only go when it is the oldest unacknowledged batch.
            return bool(in_flight) and in_flight[0] is not first
        return False

    def stamp(self, batch: ProducerBatch) -> None:
        """Give a drained batch its sequence (a retry of this epoch keeps its own)."""
        if self._is_current(batch):
            return
        tp = (batch.topic, batch.partition)
        sequence = self._next_sequence.get(tp, 0)
        batch.set_producer_state(self.producer_id, self.producer_epoch, sequence, False)
        self._next_sequence[tp] = (sequence + batch.record_count) % _SEQUENCE_MODULUS
        in_flight = self._in_flight.setdefault(tp, [])
        if not in_flight or in_flight[-1].base_sequence < sequence:
            in_flight.append(batch)  # the usual case: sequences only grow
        else:
            keys = [b.base_sequence for b in in_flight]
            in_flight.insert(bisect.bisect(keys, sequence), batch)

    def _is_current(self, batch: ProducerBatch) -> bool:
        return (batch.base_sequence >= 0 and batch.producer_id == self.producer_id and
                batch.producer_epoch == self.producer_epoch)

    # ---- outcomes ---------------------------------------------------------------------

    def on_acknowledged(self, batch: ProducerBatch) -> None:
        if not self._is_current(batch):
            return
        tp = (batch.topic, batch.partition)
        self._remove(tp, batch)
        last = (batch.base_sequence + batch.record_count - 1) % _SEQUENCE_MODULUS
        self._last_acked[tp] = last

    def on_failed(self, batch: ProducerBatch, error: BaseException) -> None:
        """A stamped batch failed for good: its sequence is a hole only a bump closes."""
        if not self._is_current(batch):
            return
        self._remove((batch.topic, batch.partition), batch)
        self.request_epoch_bump(f"{batch.topic}-{batch.partition} lost sequence "
                                f"{batch.base_sequence}: {error}")

    def on_sequence_error(self, batch: ProducerBatch, error: BaseException) -> None:
        """OUT_OF_ORDER_SEQUENCE_NUMBER or UNKNOWN_PRODUCER_ID on a batch we will retry.

        If the batch is the next one the broker should have accepted, the gap is real
        (the broker lost our state, or an earlier batch failed): bump. Otherwise an
        earlier batch is still being retried and will close the gap."""
        tp = (batch.topic, batch.partition)
        expected = (self._last_acked.get(tp, -1) + 1) % _SEQUENCE_MODULUS
        in_flight = self._in_flight.get(tp)
        first = in_flight[0] if in_flight else None
        if batch.base_sequence == expected or first is batch:
            self.request_epoch_bump(f"{tp[0]}-{tp[1]}: {error}")

    def _remove(self, tp: TP, batch: ProducerBatch) -> None:
        in_flight = self._in_flight.get(tp)
        if in_flight and batch in in_flight:
            in_flight.remove(batch)
