"""One compressed clock for the burst simulation: every wait of the local mode runs on it.

``SimClock(factor)``: ``factor`` simulated seconds pass per real second (60: 1 minute = 1
second). ``sleep`` and ``now`` are in simulated seconds. The capacity model holds each request
on it, the autoscaling simulator counts its minutes on it, and ``compressed_retry_waits``
puts moto's Retrier waits on it: moto sleeps ``time.sleep(interval)`` for real between
attempts; inside the block that interval is simulated seconds. The definition, and so the
synthesized template, is untouched: attempts, backoff, caps and jitter are the template's
own (compare ``emulator.asl.shorten_retry_waits``, which rewrites the loaded copy instead).
"""

from __future__ import annotations

import inspect
import threading
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager

from emulator.errors import MotoPatchError


class SimClock:
    """Simulated time, ``factor`` times faster than the real one, from construction."""

    def __init__(self, factor: float) -> None:
        if factor <= 0:
            raise ValueError(f"a clock factor must be positive, got {factor}")
        self.factor = factor
        self._start = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._start) * self.factor

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of simulated time."""
        if seconds > 0:
            time.sleep(seconds / self.factor)

    def describe(self) -> str:
        return f"1 simulated minute = {60 / self.factor:g} real seconds"


_lock = threading.Lock()


@contextmanager
def compressed_retry_waits(clock: SimClock) -> Iterator[None]:
    """moto's Retrier waits run on ``clock`` for the block's time (see module doc)."""
    try:
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    except ImportError as error:
        raise MotoPatchError(f"moto's Step Functions Retrier moved: {error}") from error
    if "time.sleep(interval_seconds)" not in inspect.getsource(retrier_decl):
        raise MotoPatchError("moto's Retrier no longer waits with time.sleep: port sim_clock.py")
    with _lock:
        if retrier_decl.time is not time:
            raise MotoPatchError("moto's Retrier waits are already on another clock")
        retrier_decl.time = types.SimpleNamespace(sleep=clock.sleep)
    try:
        yield
    finally:
        with _lock:
            retrier_decl.time = time
