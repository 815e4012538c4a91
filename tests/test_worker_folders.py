"""A worker's folders in the temporary folder go with it, even when Dask kills it without its
exit handlers: the next worker to make one removes those of processes that are gone."""
import os
import signal
import subprocess
import sys
import time

from assignment import ROOT, worker_folders


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
