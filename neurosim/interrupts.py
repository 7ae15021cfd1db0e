"""Ctrl-C during a run: taken at a step boundary, never in the middle of one.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be when
SIGINT arrives: after a compiled slice of steps but before the clock is advanced
(state and clock then disagree), halfway through the phases of a step, or inside a
``__del__`` or weak-reference callback (h5py's, tqdm's), where Python prints
"Exception ignored" and the run simply goes on. :class:`DeferredInterrupt` replaces
that with a flag the run loop checks between slices of steps.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any


class DeferredInterrupt:
    """Context manager: while active, SIGINT sets :attr:`requested` instead of raising.

    A second SIGINT raises ``KeyboardInterrupt`` at once (a way out of a step that
    hangs), at the price of a network whose state is no longer defined. Nothing is
    changed when the run is not in the main thread or when the program installed its
    own SIGINT handler.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> "DeferredInterrupt":
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # os.write, not print: the handler may run while the main thread is inside a
        # print to stderr (tqdm), and a buffered stream refuses a reentrant write
        try:
            os.write(2, b"\nneurosim: interrupted; stopping at the end of the current slice of "
                        b"steps (press Ctrl-C again to stop at once)\n")
        except OSError:
            pass

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
