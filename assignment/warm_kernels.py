"""Warm kernels on a worker: the template's life, and when to grade with fresh kernels instead.

``KERNELS=warm`` (the default, :data:`DEFAULT_KERNELS`) grades each submission with a kernel
forked from the worker's template (``assignment.template_kernel``); ``KERNELS=fresh`` starts every
kernel anew (``assignment.sandbox``). A worker starts its template when the worker starts (Dask's
preload, :func:`dask_setup`), when a grading run begins (:func:`start_template`, for workers started
without the preload), or else at its first submission, and keeps it; the first submission waits
for it to be ready. Warm kernels are not used, and the worker says why once
(:attr:`Graded.kernels`), where bubblewrap cannot make the template's namespaces or the template
does not come up; a template that dies is started again, at most :data:`MAX_STARTS` times in all.
"""
import atexit
import os
import selectors
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import cpu_groups, worker_folders
from .sandbox import bwrap_works, kernel_environment, setenv_arguments, system_binds

TEMPLATE_SCRIPT = Path(__file__).with_name("template_kernel.py")
LAUNCHER_SCRIPT = Path(__file__).with_name("warm_launcher.py")
#: Where the template sees the worker's grading folder (it is unmounted in every kernel).
VIEW_FOLDER = "/run/pa2-grading"
#: Seconds the template may take to import the scientific stack.
START_TIMEOUT = 120
#: Seconds a template may take to end once asked (then it is killed).
STOP_TIMEOUT = 5
#: Templates a worker starts at most (the first, and again after one died).
MAX_STARTS = 3


#: Kernels used when ``KERNELS`` is not set.
DEFAULT_KERNELS = "warm"  # the catalogue, hostile and cheat suites grade the same with either


def kernels_wanted():
    """``"warm"`` or ``"fresh"``, from ``KERNELS`` (default: :data:`DEFAULT_KERNELS`)."""
    wanted = os.environ.get("KERNELS", "").strip().lower() or DEFAULT_KERNELS
    if wanted not in ("warm", "fresh"):
        raise ValueError(f"KERNELS must be warm or fresh, not {wanted!r}")
    return wanted


def template_command(folder, socket_path):
    """The bwrap command that runs the template, seeing ``folder`` at :data:`VIEW_FOLDER`."""
    script = str(TEMPLATE_SCRIPT)
    view_socket = VIEW_FOLDER + socket_path[len(folder):]
    return ["bwrap", "--unshare-all", "--clearenv", *system_binds(), "--ro-bind", script, script,
            "--bind", folder, VIEW_FOLDER, "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP",
            "--chdir", "/", *setenv_arguments(kernel_environment()),
            "--", sys.executable, script, view_socket, folder, VIEW_FOLDER]


class Template:
    """One running template and its grading folder (every submission's work folder goes in it)."""

    def __init__(self):
        cpu_groups.join()  # the template, and every kernel it forks, in this worker's CPU group
        self.folder = worker_folders.make("pa2-warm-", "/tmp")  # the kernels' paths are made in /tmp
        self.socket = os.path.join(self.folder, "template.sock")
        self.log = os.path.join(self.folder, "template.log")
        with open(self.log, "w") as log:
            # bwrap itself gets the kernels' environment too, not the worker's, as for a fresh kernel
            self.process = subprocess.Popen(template_command(self.folder, self.socket), stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=log, text=True, env=kernel_environment())
        self._problem = None

    @property
    def problem(self):
        """Empty once the template is ready, else why it did not start (waits for it the first time)."""
        if self._problem is None:
            self._problem = self._wait_ready()
        return self._problem

    def _wait_ready(self):
        deadline = time.monotonic() + START_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if selector.select(timeout=max(0.1, deadline - time.monotonic())):
                    if self.process.stdout.readline().strip() == "ready":
                        return ""
                    break
        with open(self.log) as log:
            error = log.read().strip().splitlines()
        self.stop()
        return f"the template kernel did not start ({error[-1] if error else 'no answer'})"

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        """End the template and every kernel it started, and remove its folder. Closing its stdin
        ends it from within (killing bwrap alone would leave the template running in its namespace
        until this worker exits); bwrap returns once all of it is gone."""
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class WarmKernels:
    """This worker's template, started on first use and again after it died (:data:`MAX_STARTS`)."""

    def __init__(self):
        self.template, self.starts, self.problem = None, 0, ""
        self._lock = threading.Lock()  # the worker's task thread and its event loop (start_early)
        # Exit handlers run last registered first: joining the CPU group before registering ours
        # stops the template before the worker leaves its group, which it can then remove at once.
        cpu_groups.join()
        atexit.register(self.stop)

    def start_early(self):
        """Start the template now, if none runs, without waiting for it to be ready."""
        with self._lock:
            if self.template is None:
                self._start()

    def template_for_next_submission(self):
        """The running template, or None (then grade with fresh kernels; :attr:`problem` says why)."""
        with self._lock:
            if self.template is not None and not self.template.problem and self.template.alive():
                return self.template
            if self.template is not None:  # it did not start (this submission is graded fresh), or it died
                failed = self.template.problem
                self.template.stop()
                self.template, self.problem = None, failed or "the template kernel died"
                if failed:
                    return None
            template = self._start()
            if template is not None and template.problem:
                self.template, self.problem = None, template.problem
                return None
            return template

    def _start(self):
        """A new template (not waited for), or None when no more may be started."""
        if self.starts >= MAX_STARTS:
            return None
        if not bwrap_works():
            self.problem = "bubblewrap cannot make namespaces here"
            self.starts = MAX_STARTS
            return None
        self.starts += 1
        self.template = Template()
        return self.template

    def give_up(self, reason):
        """Use fresh kernels from now on, for ``reason`` (:attr:`problem`)."""
        self.stop()
        self.starts, self.problem = MAX_STARTS, reason

    def stop(self):
        if self.template is not None:
            self.template.stop()
            self.template = None


_WARM = {}
_WARM_LOCK = threading.Lock()


def warm_kernels():
    """The worker's :class:`WarmKernels` (one per process)."""
    with _WARM_LOCK:
        if "warm" not in _WARM:
            _WARM["warm"] = WarmKernels()
        return _WARM["warm"]


def start_template():
    """Start this worker's template now, when warm kernels are wanted: it imports the scientific
    stack while the worker and the coordinator set up. Run when a worker starts (Dask's preload,
    :func:`dask_setup`) and on every worker when a grading run begins (``client.run``)."""
    if kernels_wanted() == "warm":
        warm_kernels().start_early()


def dask_setup(worker):
    """Dask's preload hook (``--preload assignment.warm_kernels``): start the template with the worker."""
    start_template()
