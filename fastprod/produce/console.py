"""What ``fastprod produce`` shows on the terminal: progress on stderr (a tqdm bar on a
terminal, a plain line every few seconds otherwise) and the final summary."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from .run import EXIT_CODES, Summary

MB = 1_000_000


class ConsoleReporter:
    """The Reporter of the CLI. ``interval``: seconds between plain progress lines."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 interval: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self._bar: Any = None
        self._total: int | None = None
        self._started = self._last = 0.0
        self._state = (0, 0, 0, 0)

    def start(self, total_bytes: int | None) -> None:
        self._started = self._last = time.monotonic()
        self._total = total_bytes
        if self.tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total_bytes, unit="B", unit_scale=True, file=self.stream,
                             desc="producing", dynamic_ncols=True, mininterval=0.25,
                             bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                        "{rate_fmt} ETA {remaining} {postfix}"
                             if total_bytes else "{desc} {n_fmt}B {rate_fmt} {postfix}")

    def update(self, records: int, nbytes: int, position: int, failed: int) -> None:
        self._state = (records, nbytes, position, failed)
        now = time.monotonic()
        if self._bar is not None:
            if now - self._last >= 0.25:
                self._last = now
                self._bar.n = position if self._total else nbytes
                self._bar.set_postfix_str(self._postfix(now), refresh=False)
                self._bar.refresh()
            return
        if now - self._last >= self.interval:
            self._last = now
            self._plain(now)

    def _postfix(self, now: float) -> str:
        records, nbytes, _, failed = self._state
        secs = max(now - self._started, 1e-9)
        return (f"{records:,} records  {records / secs:,.0f} rec/s  {nbytes / MB:,.1f} MB  "
                f"{nbytes / MB / secs:,.1f} MB/s  failed {failed:,}")

    def _plain(self, now: float) -> None:
        records, nbytes, position, failed = self._state
        secs = max(now - self._started, 1e-9)
        line = (f"producing: {records:,} records  {nbytes / MB:,.1f} MB  "
                f"{records / secs:,.0f} rec/s  {nbytes / MB / secs:,.1f} MB/s  failed {failed:,}")
        if self._total and position:
            eta = (self._total - position) * secs / position
            line += f"  {100 * position / self._total:.1f}%  ETA {eta:,.0f}s"
        print(line, file=self.stream, flush=True)

    def note(self, message: str) -> None:
        if self._bar is not None:
            self._bar.set_description_str(message)
        else:
            print(f"{message}...", file=self.stream, flush=True)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.n = self._state[2] if self._total else self._state[1]
            self._bar.set_postfix_str(self._postfix(time.monotonic()), refresh=False)
            self._bar.close()
            self._bar = None


def format_summary(s: Summary) -> str:
    """The summary lines, for a person."""
    secs = max(s.seconds, 1e-9)
    lines = []
    if s.dry_run:
        lines.append(f"dry run: read {s.read:,} records ({s.bytes / MB:,.1f} MB) from "
                     f"{s.files} input(s) in {s.seconds:.2f}s; {s.read - s.skipped:,} would "
                     f"be sent, {s.skipped:,} skipped; nothing was sent")
    else:
        lines.append(f"{s.topic}: read {s.read:,} records, delivered {s.delivered:,}, "
                     f"failed {s.failed:,}, skipped {s.skipped:,}, not sent {s.not_sent:,}; "
                     f"{s.bytes / MB:,.1f} MB in {s.seconds:.2f}s "
                     f"({s.read / secs:,.0f} records/s, {s.bytes / MB / secs:,.1f} MB/s)")
    if s.interrupted:
        lines.append("interrupted: reading stopped; what was read was flushed"
                     + (f" ({s.not_sent:,} records not confirmed)" if s.not_sent else ""))
    if s.stopped:
        lines.append(f"stopped: {s.stopped}")
    if s.malformed:
        lines.append(f"skipped {s.skipped:,} malformed record(s):")
        lines.extend(f"  {m}" for m in s.malformed)
        if s.skipped > len(s.malformed):
            lines.append(f"  ... and {s.skipped - len(s.malformed):,} more")
    if s.failures:
        kinds = ", ".join(f"{k} x{n:,}" for k, n in sorted(s.failure_kinds.items()))
        lines.append(f"failed {s.failed:,} record(s) ({kinds}):")
        lines.extend(f"  {f}" for f in s.failures)
        if s.failed > len(s.failures):
            lines.append(f"  ... and {s.failed - len(s.failures):,} more")
    meaning = EXIT_CODES[s.exit_code]
    if s.dry_run and s.exit_code == 0:
        meaning = "every record read parses (dry run: nothing was sent)"
    lines.append(f"exit {s.exit_code}: {meaning}")
    return "\n".join(lines)


def summary_json(s: Summary) -> str:
    return json.dumps(s.to_dict(), indent=None, sort_keys=True)
