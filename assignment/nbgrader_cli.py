"""Run nbgrader's command line from the course root, with the venv's tools on PATH."""
import os
import subprocess
import sys

from . import ROOT


def nbgrader_env():
    """Environment for nbgrader: the interpreter's bin/ first on PATH (nbgrader runs `alembic`)."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    return env


def run_nbgrader(*args, timeout=None, check=True):
    """Run ``nbgrader ARGS`` in the course root; return the CompletedProcess (text output)."""
    command = [sys.executable, "-m", "nbgrader", *args]
    result = subprocess.run(command, cwd=ROOT, env=nbgrader_env(), capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"`nbgrader {' '.join(args)}` failed ({result.returncode}):\n"
                           f"{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result
