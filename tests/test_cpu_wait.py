"""Cell limits count only the kernel's own time (``assignment.cpu_wait``): a cell that shares its
core with another process gets the time it waited for it, and no kernel more than twice its
limit. With the real sandboxed kernel, nbgrader's Execute preprocessor and the probe's link."""
import os
import subprocess
import sys
import time

import nbformat
import pytest

from assignment import ROOT
from assignment.cpu_wait import CpuWait, kernel_process, run_delay
from assignment.grade_one import kernels_dir, nbgrader_config
from assignment.preprocessors import ExecuteRecordingProgress
from assignment.probes import KernelLink
from assignment.sandbox import bwrap_works

LIMIT = 3  # seconds of a cell, here
needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap cannot make namespaces here")

#: In the kernel: its main thread and a busy process share one core from now on.
SHARE_A_CORE = """import os, subprocess, sys
core = min(os.sched_getaffinity(0))
os.sched_setaffinity(0, {core})
hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
os.sched_setaffinity(hog.pid, {core})"""
#: Two seconds of the kernel's own CPU time: four or so of wall time beside the busy process.
TWO_CPU_SECONDS = """import time
started, cpu = time.perf_counter(), time.thread_time()
while time.thread_time() < cpu + 2.0:
    pass
print(f"2 s of CPU in {time.perf_counter() - started:.1f} s")"""


def crowded_notebook(*cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(SHARE_A_CORE), *(nbformat.v4.new_code_cell(c) for c in cells)]
    nb.metadata["kernelspec"] = {"name": "pa2-sandbox", "display_name": "PA2", "language": "python"}
    return nb


def execute(nb, tmp_path, monkeypatch):
    """Run ``nb`` as grading runs it (the sandboxed kernel, cells of LIMIT seconds); its cells."""
    course, runtime = tmp_path / "course", tmp_path / "run"
    course.mkdir()
    runtime.mkdir()
    (course / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    kernels, _ = kernels_dir()
    for name, value in {"JUPYTER_PATH": kernels, "JUPYTER_RUNTIME_DIR": runtime, "TMPDIR": runtime}.items():
        monkeypatch.setenv(name, str(value))
    config = nbgrader_config(course, runtime)
    config.Execute.timeout = LIMIT
    config.ExecuteRecordingProgress.interrupt_grace = 2
    config.ExecuteRecordingProgress.judge_outside = False  # plain cells: nothing to judge
    executor = ExecuteRecordingProgress(config=config)
    started = time.monotonic()
    out, _ = executor.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    return out.cells, time.monotonic() - started


def outputs(cell):
    return " | ".join(o.get("text") or f"{o.get('ename')}: {o.get('evalue')}" for o in cell.outputs)


@needs_bwrap
def test_a_cell_sharing_its_core_is_not_cut_while_its_own_time_is_left(tmp_path, monkeypatch):
    """A cell needing 2 s of CPU on a core it shares with a busy process takes about 4 s: more than
    its 3 s limit, but it waited for the core for about 2 of them, so it must finish."""
    cells, _ = execute(crowded_notebook(TWO_CPU_SECONDS), tmp_path, monkeypatch)
    printed = outputs(cells[1])
    assert printed.startswith("2 s of CPU in "), f"expected the cell to finish, got {printed!r}"
    wall = float(printed.split(" in ")[1].split(" s")[0])
    assert wall > LIMIT, f"expected the cell to take more than its {LIMIT} s limit (sharing its core), got {wall} s"


@needs_bwrap
def test_a_kernel_that_makes_itself_wait_gets_at_most_twice_its_limit(tmp_path, monkeypatch):
    """A cell that never ends, on a core it shares with a busy process, waits for the CPU half the
    time, and yet is interrupted within twice its limit (and the interrupt's few moments)."""
    cells, seconds = execute(crowded_notebook("while True:\n    pass"), tmp_path, monkeypatch)
    assert "CellTimeoutError" in outputs(cells[1]), f"expected the endless cell cut, got {outputs(cells[1])!r}"
    assert seconds < 2 * LIMIT + 4, f"expected the notebook done within {2 * LIMIT + 4} s, got {seconds:.1f} s"


@needs_bwrap
def test_the_kernel_is_found_as_pid_2_of_its_namespace_and_its_wait_is_read():
    """The deepest descendant that is PID 2 of its own namespace is the sandboxed command; a
    process crowded on one core has waited for it."""
    core = min(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    sandboxed = subprocess.Popen(["bwrap", "--die-with-parent", "--ro-bind", "/", "/", "--unshare-pid", "--dev", "/dev", "--proc", "/proc",
                                  sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        pid = kernel_process()
        assert pid is not None and pid != sandboxed.pid, f"expected the command under bwrap, got {pid}"
        assert kernel_process(ancestor=hog.pid) is None, "expected nothing found under a process without namespaces"
        for process in (pid, hog.pid):
            os.sched_setaffinity(process, {core})
        wait = CpuWait()
        mark = wait.mark()
        time.sleep(1.5)
        waited = run_delay(pid) - mark[1]
        assert 0.3 < waited < 1.5, f"expected the kernel to wait for its core 0.3 to 1.5 s of 1.5, got {waited:.2f}"
        assert wait.extension(0.5, mark) == 0.5, "expected the extension capped at the limit itself"
        wait.reset()
        assert wait.extension(10, (pid + 1, 0.0)) == 0.0, "expected no extension for a mark of another kernel"
    finally:
        for process in (hog, sandboxed):
            process.kill()
            process.wait()


class FixedWait:
    """A kernel that waited ``waited`` seconds for a CPU since every mark."""

    def __init__(self, waited):
        self.waited = waited

    def mark(self):
        return (2, 0.0)

    def extension(self, seconds, since):
        return min(self.waited, seconds)


@pytest.mark.parametrize("waited, cut", [(0.0, True), (0.5, False), (5.0, True)])
def test_a_check_limit_is_moved_back_by_the_kernels_wait_up_to_the_limit_again(waited, cut):
    """A check's 1 s limit, 1.2 s on: passed when the kernel waited for nothing, not passed when it
    waited 0.5 s, passed again (at 2 s at most) however long it waited."""
    link = KernelLink.__new__(KernelLink)
    link.deadlines, link.cpu_wait, link._keys = {}, FixedWait(waited), iter(range(9))
    owner = object()
    key = link.limit(1.0, owner)
    started = link.deadlines[key][1]
    now = started + (1.2 if waited < 5 else 2.1)
    assert (link._passed(now) is owner) == cut, f"expected {'a cut' if cut else 'no cut'} after {now - started:.1f} s"
    link.unlimit(key)
    assert link._passed(now + 100) is None, "expected no limit once the check ended"
