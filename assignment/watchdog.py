"""A grader thread stuck in its own work ends its worker process: nothing else can stop it.

The grader's threads run its own code on what a kernel sent: a stand-in's answer on the
kernel's arguments (``assignment.probes``), a verdict on the values that came back. Those
arguments are the student's to choose (``update_centroids(X, 10**15, assoc)``), and Python
cannot stop a thread from outside. So a block of such work runs under :meth:`Watchdog.limit`:
past its time, the process prints why and exits. Under Dask the nanny starts a new worker and the
scheduler gives the submission to another, up to its allowed failures; then the submission
fails (``assignment.fan_out.killed``), as one that runs a worker out of memory does, and the
class goes on.
"""
import contextlib
import os
import sys
import threading
import time

#: The exit status of a worker the watchdog ended.
EXIT_STATUS = 70


class Watchdog:
    """One thread per process that ends the process when a block outlives its limit."""

    def __init__(self):
        self._armed = {}  # key -> (monotonic deadline, what, seconds)
        self._changed = threading.Condition()
        self._thread = None

    @contextlib.contextmanager
    def limit(self, seconds, what):
        """Run the block; if it is still running ``seconds`` later, end this process (``what``
        names the work in the message)."""
        if not 0 < seconds < float("inf"):
            raise ValueError(f"a watchdog's limit must be a positive number of seconds, not {seconds!r}")
        key = object()
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="pa2-watchdog", daemon=True)
                self._thread.start()
            self._armed[key] = (time.monotonic() + seconds, what, seconds)
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                del self._armed[key]

    def _watch(self):
        with self._changed:
            while True:
                if not self._armed:
                    self._changed.wait()
                    continue
                until, what, seconds = min(self._armed.values(), key=lambda armed: armed[0])
                left = until - time.monotonic()
                if left <= 0:
                    end_process(f"{what} ran for more than {seconds:g} s")
                self._changed.wait(min(left, threading.TIMEOUT_MAX))


def end_process(why):
    """Print ``why`` and end this process at once (no cleanup can wait on the stuck thread)."""
    print(f"pa2 grader: {why}; ending this worker process (pid {os.getpid()})", file=sys.stderr, flush=True)
    os._exit(EXIT_STATUS)


#: The process's watchdog.
WATCHDOG = Watchdog()
