"""A worker's folders in the temporary folder go with it, even when Dask kills it without its
exit handlers: the next worker to make one removes those of processes that are gone."""
import os
import signal
import subprocess
import sys
import json
import time

import pytest

from assignment import ROOT, worker_folders
from assignment.sandbox import GRADER_PID


def test_folders_of_gone_processes_are_removed_and_live_or_unknown_ones_kept(tmp_path):
    """Of each kind of worker folder, one whose process is gone, or that was never named and is
    old, is removed; one of a live process, one being made, and anything else are left alone."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    for prefix in worker_folders.PREFIXES:
        folders = {name: tmp_path / f"{prefix}{name}" for name in ("gone", "live", "starting", "unnamed_old")}
        for folder in folders.values():
            folder.mkdir()
            (folder / "kernel-1").mkdir()
        (folders["gone"] / "worker.pid").write_text(str(gone.pid))
        (folders["live"] / "worker.pid").write_text(str(os.getpid()))
        old = time.time() - 2 * worker_folders.UNNAMED_SECONDS
        os.utime(folders["unnamed_old"], (old, old))
    (tmp_path / "pa2-grade-other").mkdir()
    (tmp_path / "pa2-grade-other" / "worker.pid").write_text(str(gone.pid))
    worker_folders.remove_stale(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["pa2-grade-other"] + [f"{prefix}{name}" for prefix in worker_folders.PREFIXES for name in ("live", "starting")])


MAKE_KERNELSPECS = ("import os, signal, sys; from assignment.grade_one import kernels_dir; "
                    "print(kernels_dir()[0], flush=True); "
                    "os.kill(os.getpid(), signal.SIGKILL) if sys.argv[1] == 'killed' else None")


def _worker(how, tmp_path):
    """Run a process that makes its kernelspecs folder (in ``tmp_path``) and exits ``how``."""
    done = subprocess.run([sys.executable, "-c", MAKE_KERNELSPECS, how], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=120)
    assert done.returncode == (-signal.SIGKILL if how == "killed" else 0), done.stderr
    return done.stdout.strip()


def test_a_killed_workers_kernelspecs_go_with_the_next_worker_and_an_exiting_one_takes_its_own(tmp_path):
    """A worker killed without its exit handlers leaves its kernelspecs folder; the next worker's
    removes it, and a worker that exits normally leaves nothing."""
    killed = _worker("killed", tmp_path)
    assert os.path.basename(killed).startswith("pa2-kernels-") and os.path.isdir(killed)
    _worker("exits", tmp_path)
    assert list(tmp_path.iterdir()) == [], f"expected nothing left, got {sorted(p.name for p in tmp_path.iterdir())}"


#: A worker grading one example submission with fresh kernels, killed (SIGKILL, no exit handlers)
#: as soon as the submission's work folder is made: argv[1] is the gradebook cache.
GRADE_UNTIL_KILLED = """
import os, signal, sys, tempfile, threading, time
from pathlib import Path
from assignment import ROOT, grade, grade_one, gradebook
course = grade_one.course_bundle(ROOT, gradebook.template_gradebook(ROOT, sys.argv[1]))
task = grade.read_task(ROOT / "submitted" / "correct_alternative")
threading.Thread(target=grade_one.grade_submission, args=(task, course), daemon=True).start()
def made():  # the work folder sits in the worker's own folder; the walk stays out of the ones that come and go
    try:
        return list(Path(tempfile.gettempdir()).glob("*/pa2-grade-*"))
    except OSError:
        return []
deadline = time.time() + 120
while not made() and time.time() < deadline:
    time.sleep(0.05)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_worker_killed_while_grading_with_fresh_kernels_leaves_nothing_once_the_next_starts(tmp_path):
    """A submission's work folder is inside its worker's own folder, kernels fresh or warm: a
    worker killed mid-grading leaves nothing in the temporary folder once the next one starts."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = subprocess.run([sys.executable, "-c", GRADE_UNTIL_KILLED, str(tmp_path / "cache")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(temporary), "KERNELS": "fresh"})
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert list(temporary.glob("**/pa2-grade-*")), "expected the killed worker to have made a work folder"
    _worker("exits", temporary)
    assert list(temporary.iterdir()) == [], f"expected nothing left, got {sorted(p.name for p in temporary.iterdir())}"


def connection_file(folder):
    """A kernel connection file in ``folder`` for IPC sockets in ``folder``/sockets."""
    (folder / "sockets").mkdir()
    connection = folder / "kernel.json"
    connection.write_text(json.dumps({"transport": "ipc", "ip": str(folder / "sockets" / "kernel"), "key": "",
                                      "signature_scheme": "hmac-sha256", "shell_port": 1, "iopub_port": 2,
                                      "stdin_port": 3, "control_port": 4, "hb_port": 5}))
    return connection


@pytest.mark.parametrize("script", ["sandbox.py", "warm_launcher.py"])
def test_a_kernel_launcher_whose_worker_died_before_it_started_ends_at_once(tmp_path, script):
    """A worker killed while its kernel's launcher starts leaves that launcher with another
    parent; told the worker's process id, the launcher sees this and exits at once, where it would
    otherwise start a kernel that nothing ends (without a sandbox here: the kernel itself)."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    connection = connection_file(tmp_path)
    env = {**os.environ, GRADER_PID: str(gone.pid), "PA2_SANDBOX": "none"}
    env.pop("PA2_WARM_TEMPLATE", None)
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, str(ROOT / "assignment" / script), str(connection)],
                                env=env, cwd=tmp_path, capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"expected {script} to exit at once, got a kernel still running after 20 s")
    assert result.returncode == 1, f"expected exit status 1, got {result.returncode}: {result.stderr[-500:]!r}"
    assert time.monotonic() - started < 10


def test_a_kernel_launcher_whose_worker_lives_starts_the_kernel(tmp_path):
    """The same launcher told its real parent's process id starts the kernel (the check above
    stops only an orphan)."""
    connection = connection_file(tmp_path)
    env = {**os.environ, GRADER_PID: str(os.getpid()), "PA2_SANDBOX": "none"}
    process = subprocess.Popen([sys.executable, str(ROOT / "assignment" / "sandbox.py"), str(connection)],
                               env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and not (tmp_path / "sockets" / "kernel-5").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, f"expected the kernel running, got exit status {process.returncode}"
    finally:
        process.kill()
        process.wait()
