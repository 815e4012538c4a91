"""How long a grading kernel waited for a CPU: so that its cell limits count only its own time.

A grading kernel shares the machine's cores with the other workers' kernels, the workers, the
coordinator, and whatever else runs there. Then it is sometimes ready to run but waits while
another process has the core. Linux counts that wait for every thread (``run_delay``, the
second number of ``/proc/<pid>/schedstat``). A cell's limit is extended by what the kernel's
main thread (the one that runs the cells) waited during the cell, and by at most the limit
again: a cell that would have finished in time alone is not cut because the machine was shared,
and no kernel, however it makes itself wait, gets more than twice its limit.

The kernel's main process is found once per kernel: among this process's descendants, the
deepest one that is PID 2 of its own PID namespace (bubblewrap's and the warm template's
namespaces both put the kernel there, under their PID 1). A kernel outside any PID namespace
(no bubblewrap) is not found, and its limits are plain wall-clock time, as nbgrader's.
"""
import os
from pathlib import Path

#: Nanoseconds per second: schedstat counts nanoseconds.
NS = 1e9


def _status(pid):
    """``(ppid, nspids)`` of process ``pid`` from ``/proc/<pid>/status``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    ppid, nspids = None, []
    for line in text.splitlines():
        if line.startswith("PPid:"):
            ppid = int(line.split()[1])
        elif line.startswith("NSpid:"):
            nspids = [int(v) for v in line.split()[1:]]
    return ppid, nspids


def kernel_process(ancestor=None):
    """The host PID of the grading kernel under ``ancestor`` (default: this process), or None.

    The deepest descendant that is PID 2 of its PID namespace; the newest among equals."""
    ancestor = os.getpid() if ancestor is None else ancestor
    parents, nested = {}, {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            found = _status(entry.name)
            if found is not None:
                pid = int(entry.name)
                parents[pid], nspids = found[0], found[1]
                if len(nspids) > 1 and nspids[-1] == 2:
                    nested[pid] = len(nspids)

    def descends(pid):
        seen = set()
        while pid and pid not in seen:
            seen.add(pid)
            pid = parents.get(pid)
            if pid == ancestor:
                return True
        return False

    candidates = [pid for pid in nested if descends(pid)]
    if not candidates:
        return None
    return max(candidates, key=lambda pid: (nested[pid], _started(pid)))


def _started(pid):
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def run_delay(pid):
    """Seconds the main thread of process ``pid`` has waited for a CPU since it started, or None."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / NS
    except (OSError, IndexError, ValueError):
        return None


class CpuWait:
    """The CPU wait of one kernel, for the limits of its cells.

    ``mark()`` when a limited stretch of time begins; ``extension(seconds, mark)`` is how much
    longer than ``seconds`` that stretch may last: what the kernel's main thread waited for a CPU
    since the mark, and at most ``seconds``. It is 0 where the kernel's wait cannot be read.
    The kernel's process is looked for once per kernel (:meth:`reset` after a restart).
    """

    def __init__(self, ancestor=None):
        self.ancestor = ancestor
        self.reset()

    def reset(self):
        """The kernel was (re)started: find its process again when next asked."""
        self.pid, self.looked = None, False

    def mark(self):
        """``(pid, seconds waited so far)`` of the kernel's main thread, or None where unknown."""
        if not self.looked:
            self.pid, self.looked = kernel_process(self.ancestor), True
        waited = run_delay(self.pid) if self.pid is not None else None
        return None if waited is None else (self.pid, waited)

    def extension(self, seconds, since):
        """Seconds to add to a limit of ``seconds`` that began at mark ``since``."""
        now = self.mark() if since is not None else None
        if now is None or now[0] != since[0]:  # unknown, or another kernel since the mark
            return 0.0
        return min(max(now[1] - since[1], 0.0), float(seconds))
