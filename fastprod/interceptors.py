"""Producer interceptors (Java's ProducerInterceptor, ``interceptor.classes``).

An interceptor is an object with any of:

- ``on_send(record: ProducerRecord) -> ProducerRecord``: called in ``send()`` before the
  record is serialized and partitioned; it may return a changed record;
- ``on_acknowledgement(metadata: RecordMetadata | None, error: BaseException | None)``:
  called on the sender thread when the record is written or has failed, before the
  record's own ``on_delivery`` callback;
- ``close()``: called by ``Producer.close()``.

As in Java, an exception from an interceptor is logged and otherwise ignored: the
record goes on with what the previous interceptor returned.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

if TYPE_CHECKING:
    from fastprod.engine.futures import DeliveryCallback, RecordMetadata

log = logging.getLogger("fastprod.interceptors")


class ProducerRecord(NamedTuple):
    topic: str
    value: Any = None
    key: Any = None
    partition: int | None = None
    timestamp: int | None = None
    headers: Any = None


class Interceptors:
    """The configured interceptors, called in order."""

    def __init__(self, interceptors: list[Any]) -> None:
        self._on_send = [i.on_send for i in interceptors if hasattr(i, "on_send")]
        self._on_ack = [i.on_acknowledgement for i in interceptors
                        if hasattr(i, "on_acknowledgement")]
        self._all = interceptors
        self._failing: set[tuple[int, str]] = set()  # (interceptor, phase) logged once

    @classmethod
    def from_config(cls, specs: tuple[Any, ...], configs: dict[str, Any]) -> "Interceptors | None":
        """Instantiate ``interceptor.classes`` (classes get ``configure(configs)`` if they
        have it, as Java's getConfiguredInstances)."""
        instances = []
        for spec in specs:
            instance = spec() if isinstance(spec, type) else spec
            configure = getattr(instance, "configure", None)
            if isinstance(spec, type) and callable(configure):
                configure(configs)
            if not (hasattr(instance, "on_send") or hasattr(instance, "on_acknowledgement")):
                from fastprod.errors import ConfigError
                raise ConfigError(f"interceptor.classes: {spec!r} has neither on_send nor "
                                  f"on_acknowledgement")
            instances.append(instance)
        return cls(instances) if instances else None

    def on_send(self, record: ProducerRecord) -> ProducerRecord:
        for fn in self._on_send:
            try:
                record = fn(record)
            except Exception:
                self._raised(fn, "on_send", "; the record goes on as it was")
        return record

    def wrap_callback(self, on_delivery: DeliveryCallback | None) -> DeliveryCallback:
        """The on_delivery that runs the interceptors first, then the user's."""
        def callback(metadata: RecordMetadata | None, error: BaseException | None) -> None:
            for fn in self._on_ack:
                try:
                    fn(metadata, error)
                except Exception:
                    self._raised(fn, "on_acknowledgement", "")
            if on_delivery is not None:
                on_delivery(metadata, error)
        return callback

    def _raised(self, fn: Callable[..., object], phase: str, consequence: str) -> None:
        """Log the first exception of each interceptor method with its traceback, the
        later ones at DEBUG: a broken interceptor must not flood the log per record."""
        key = (id(fn.__self__) if hasattr(fn, "__self__") else id(fn), phase)
        if key in self._failing:
            log.debug("interceptor %s %r raised again", phase, fn, exc_info=True)
            return
        self._failing.add(key)
        log.exception("interceptor %s %r raised%s (logged once; later ones at DEBUG)",
                      phase, fn, consequence)

    def close(self) -> None:
        for interceptor in self._all:
            close = getattr(interceptor, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.exception("interceptor close %r raised", interceptor)
