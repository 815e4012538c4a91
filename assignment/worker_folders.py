"""Folders a grading worker keeps in the temporary folder while it lives.

Each worker makes two: the kernelspecs its kernels start from (``pa2-kernels-*``,
``assignment.grade_one``) and, with warm kernels, its template's grading folder (``pa2-warm-*``,
``assignment.warm_kernels``). It removes them when it exits, but Dask can end a worker without
its exit handlers. So each folder names the process that made it (``worker.pid``), and the next
worker to make one removes those whose process is gone, as does a local grading run once its
cluster is closed (``assignment.fan_out``): a run that ends, even by Ctrl-C, leaves none of its
own, and a class graded again and again leaves at most the folders of the workers killed last.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

#: The prefixes of the folders a worker makes (and the only ones ever removed here).
PREFIXES = ("pa2-kernels-", "pa2-warm-")
#: Seconds a folder may stay without ``worker.pid`` (made, not yet named) before it counts as left over.
UNNAMED_SECONDS = 240


def make(prefix, parent=None):
    """A new folder ``<parent>/<prefix>XXXX`` named for this process, after removing the stale ones.

    Parameters
    ----------
    prefix : str
        One of :data:`PREFIXES`.
    parent : str, optional
        Where to make it (default: the temporary folder).

    Returns
    -------
    str
        The folder's path. The caller removes it when done.
    """
    if prefix not in PREFIXES:
        raise ValueError(f"not a worker folder's prefix: {prefix!r}")
    parent = parent or tempfile.gettempdir()
    remove_stale(parent)
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)
    Path(folder, "worker.pid").write_text(str(os.getpid()))
    return folder


def remove_stale(parent=None):
    """Remove the worker folders in ``parent`` whose process no longer exists, or that are
    older than :data:`UNNAMED_SECONDS` with no process named. A live process's folder, this
    user's or another's, is left alone."""
    parent = Path(parent or tempfile.gettempdir())
    for prefix in PREFIXES:
        for folder in parent.glob(f"{prefix}*"):
            try:
                pid = int((folder / "worker.pid").read_text())
            except (OSError, ValueError):
                try:
                    if time.time() - folder.stat().st_mtime > UNNAMED_SECONDS:
                        shutil.rmtree(folder, ignore_errors=True)
                except OSError:
                    pass
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                shutil.rmtree(folder, ignore_errors=True)
            except PermissionError:  # another user's live process
                pass
