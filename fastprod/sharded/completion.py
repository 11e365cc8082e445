"""Turning a worker's reports into completed futures and callbacks (on the reports
thread), and failing what a lost worker or a closed producer leaves unanswered."""

from __future__ import annotations

from fastprod._ext.accumulate import complete_futures
from fastprod.engine.futures import ProduceRequestResult
from fastprod.sharded import messages
from fastprod.sharded.handle import WorkerHandle
from fastprod.sharded.messages import Report


def complete(w: WorkerHandle, report: Report) -> None:
    entry = w.pending.get(report.frame_id)
    if entry is None:
        return  # a repeat after a restart, already done
    start = report.start
    fresh = entry.mark(start, report.count)
    if not fresh:
        return
    error = messages.decode_error(report.error)
    errors = None
    if report.record_errors:
        errors = {int(rel): messages.decode_error(e) for rel, e in report.record_errors.items()}
    base_offset, log_append_time = report.base_offset, report.log_append_time
    if entry.futures is not None:  # send() records
        complete_futures(entry.futures, entry.callbacks, fresh, start, base_offset,
                         log_append_time, error, errors)
    else:  # a part of a send_batch call
        partition = report.partition
        result = ProduceRequestResult(entry.topic, partition)
        result.set(base_offset, log_append_time, error, errors)
        result.done()
        first = fresh[0]
        if fresh == list(range(first, first + len(fresh))):
            entry.future.add_completed(result, first - start,
                                       entry.indices[first:first + len(fresh)])
        else:  # some were reported already: one segment per record
            for i in fresh:
                single = ProduceRequestResult(entry.topic, partition)
                single.set(-1 if base_offset < 0 else base_offset + i - start,
                           log_append_time, error)
                single.done()
                entry.future.add_completed(single, 0, entry.indices[i:i + 1])
    if entry.all_done:
        del w.pending[report.frame_id]
        if entry.indices is not None:
            entry.future.segment_done()


def fail_pending(w: WorkerHandle, error: BaseException) -> None:
    """Fail every record of ``w`` not answered yet: staged ones and framed ones."""
    for run in w.shard.take_runs():
        complete_futures(run.futures, run.callbacks, list(range(run.start, len(run.futures))),
                         run.start, -1, -1, error, None)
    encoded = messages.encode_error(error)
    for frame_id, entry in list(w.pending.items()):
        if not entry.all_done:
            complete(w, Report(frame_id, 0, entry.count, -1, -1, -1, encoded, None))
