"""The grader's end of the probe: requests to the student's kernel, answers read as hostile data.

:class:`KernelLink` talks to the kernel nbgrader is running, over a client of its own (its own
session, so the kernel's stdin requests come back to it). The grader installs the probe
(``assignment/probe_runtime.py``) once, and again whenever it is missing or broken, then sends
requests: call this student function on these inputs, read this variable, describe the figures
shown. The probe runs a serving loop over the kernel's stdin channel (the channel of
``input()``), which costs far less per request than an execution, and which stays open across
consecutive judged cells until the notebook needs its kernel back (:meth:`KernelLink.finish`); each answer must come as
the probe's prompt, within that loop's execution, readable by ``assignment.boundary`` within its
limits; anything else is a :class:`ProbeFailed` with a message for the student. While a student function runs, the kernel may ask for a
stand-in's answer (an instructor's helper swapped in for the check): the link answers only the
stand-ins the running check has declared, computing them here, outside the kernel.

Time is kept here too: every request has a deadline (the cell's time, or a check's own limit),
which the time the kernel waited for a CPU moves back (``assignment.cpu_wait``, up to the limit
again). When it passes, the kernel is interrupted; a kernel that ignores the interrupt for
``grace`` seconds raises :class:`KernelStuck`, so that the cell loses its points and the kernel
is restarted, as for any cell.
"""
import ast
import functools
import itertools
import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq
from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client import BlockingKernelClient
from nbclient.exceptions import DeadKernelError

from . import boundary
from .probe_runtime import ANSWER_PROMPT, DONE, REQUEST_PROMPT, STANDIN_PROMPT, same_generator_state
from .watchdog import WATCHDOG

RUNTIME_FILES = (Path(__file__).with_name("boundary.py"), Path(__file__).with_name("probe_runtime.py"))
#: Seconds one stand-in's answer may take here. The instructor's helpers take milliseconds on what
#: a check passes, but the kernel chooses the arguments (a k of 10**15); past this the worker
#: process ends (``assignment.watchdog``), the one way to stop the thread computing it.
STANDIN_SECONDS = float(os.environ.get("PA2_STANDIN_SECONDS", "30"))
if not 0 < STANDIN_SECONDS < float("inf"):  # at the worker's start, never as a student's failed check
    raise ValueError(f"PA2_STANDIN_SECONDS must be a positive number of seconds, not {STANDIN_SECONDS}")


class ProbeFailed(Exception):
    """The kernel gave no readable answer to a request (the check fails with this message)."""


class KernelStuck(Exception):
    """The kernel neither finished a request nor answered an interrupt in time."""


class TimeUp(Exception):
    """A request ran past its deadline and the kernel was interrupted; ``limit`` is the deadline's owner."""

    def __init__(self, limit):
        super().__init__(limit)
        self.limit = limit


@functools.lru_cache(maxsize=4)  # the same master notebook for every submission a worker grades
def helper_definitions(source):
    """The definitions of a notebook cell: its imports, functions, classes and constant
    assignments, without the statements that act on the IPython shell (hooks, magics, seeds).

    Both sides use the checking helpers of the master notebook this way: the probe in the
    kernel, and the verdicts in the grader.
    """
    tree = ast.parse(TransformerManager().transform_cell(source))
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            keep.append(node)
        elif isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.List, ast.Tuple)):
            keep.append(node)
    return ast.unparse(ast.Module(body=keep, type_ignores=[]))


@functools.lru_cache(maxsize=4)
def runtime_source(helpers_source):
    """The probe's source: the boundary's codec, the checking helpers, the probe's requests."""
    return "\n\n".join([RUNTIME_FILES[0].read_text(), helper_definitions(helpers_source),
                        RUNTIME_FILES[1].read_text()])


INSTALL = '''def __pa2_install(source):
    import sys, types
    module = types.ModuleType("_pa2_probe")
    exec(compile(source, "{file}", "exec"), module.__dict__)
    sys.modules["_pa2_probe"] = module
__pa2_install({source!r})
del __pa2_install'''


class _BoundedContext(zmq.Context):
    """Sockets that drop any message bigger than the boundary's limit before it is read."""

    def socket(self, *args, **kwargs):
        socket = super().socket(*args, **kwargs)
        socket.setsockopt(zmq.MAXMSGSIZE, boundary.MAX_TEXT + 2**20)
        return socket


class KernelLink:
    """Requests to a running kernel and their answers.

    Parameters
    ----------
    connection_info : dict
        The kernel's connection info (without a session: the link makes its own).
    helpers_source : str
        The master notebook's ``checking_helpers`` cell, for the probe.
    interrupt, is_alive : callables
        Interrupt the kernel; tell whether its process lives.
    grace : float
        Seconds an interrupted kernel has to answer before it counts as stuck.
    cpu_wait : CpuWait, optional
        The kernel's wait for a CPU, which extends every limit (none without it).
    """

    def __init__(self, connection_info, helpers_source, interrupt, is_alive, grace=10, cpu_wait=None):
        self.client = BlockingKernelClient(context=_BoundedContext())
        self.client.load_connection_info(connection_info)
        self.client.start_channels(hb=False)
        self.interrupt, self.is_alive, self.grace, self.cpu_wait = interrupt, is_alive, grace, cpu_wait
        self.install_code = INSTALL.format(file="<pa2-probe>", source=runtime_source(helpers_source))
        self.deadlines = {}  # key -> [until, started, seconds, owner, mark]: a request stops at the earliest
        self._keys = itertools.count()
        self.standins = {}   # name -> grader-side function, while a check swaps it in
        self.answered = 0    # stand-in requests answered in this check
        self.installed = False
        self.serving = None  # msg_id of the probe's serving loop, while it waits for a request
        self.synced_rng = None  # the kernel's generator state after the last stand-in's call
        self.shared_folder, self._own_folder = self._folder_for_files(connection_info)

    @staticmethod
    def _folder_for_files(connection_info):
        """Where the grader leaves files for the kernel to read: the folder of its IPC sockets,
        which every kernel (sandboxed, warm or not) sees at the same path; a folder of the link's
        own for a kernel on TCP, which runs unsandboxed on this machine (the tests' kernels)."""
        if connection_info.get("transport") == "ipc" and os.path.isabs(str(connection_info.get("ip", ""))):
            return os.path.dirname(connection_info["ip"]), None
        folder = tempfile.mkdtemp(prefix="pa2-link-")
        return folder, folder

    def file_for_kernel(self, words):
        """Write ``words`` (a NumPy array, as raw bytes) to a new file with a secret name in
        :attr:`shared_folder`, for the kernel to read; return its path. The kernel may write in
        that folder, so the file is made with ``O_EXCL | O_NOFOLLOW``: nothing the kernel put
        there is written through (OSError instead)."""
        path = os.path.join(self.shared_folder, f"pa2-ahead-{secrets.token_hex(16)}")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644), "wb") as handle:
            try:
                words.tofile(handle)
            except BaseException:
                os.remove(path)
                raise
        return path

    def close(self):
        self.client.stop_channels()
        self.client.context.destroy(linger=0)
        if self._own_folder:
            shutil.rmtree(self._own_folder, ignore_errors=True)

    # -- time limits ----------------------------------------------------------------------
    def limit(self, seconds, owner):
        """Requests from now on stop ``seconds`` from now (plus the kernel's CPU wait), raising
        :class:`TimeUp` with ``owner``; returns the key that :meth:`unlimit` takes."""
        key = next(self._keys)
        mark = self.cpu_wait.mark() if self.cpu_wait is not None else None
        now = time.monotonic()
        self.deadlines[key] = [now + seconds, now, seconds, owner, mark]
        return key

    def unlimit(self, key):
        self.deadlines.pop(key, None)

    def _passed(self, now):
        """The owner of a deadline that has passed, counting the kernel's CPU wait, or None."""
        for deadline in sorted(self.deadlines.values(), key=lambda d: d[0]):
            if now <= deadline[0]:
                return None
            _, started, seconds, owner, mark = deadline
            if self.cpu_wait is not None and mark is not None:
                later = started + seconds + self.cpu_wait.extension(seconds, mark)
                if now <= later:
                    deadline[0] = later
                    continue
            return owner
        return None

    # -- requests -------------------------------------------------------------------------
    def install(self):
        """Install the probe in the kernel (again after a restart, or when the notebook broke it)."""
        self.finish()
        self._exchange(self.client.execute(self.install_code, silent=True, store_history=False, allow_stdin=False))
        self.installed = True

    def request(self, op, **fields):
        """Send request ``op``; return the probe's answer (a dict) or raise :class:`ProbeFailed`.

        Requests go to the probe's serving loop over the stdin channel: the loop asks for a
        request, and sends each answer as the prompt of its next ask. A probe that is missing or
        broken is installed again, and the request sent once more.
        """
        text = json.dumps({"op": op, **fields}, separators=(",", ":"))
        if not self.installed:
            self.install()
        try:
            answer = self._send(text)
        except ProbeFailed:
            self.install()
            answer = self._send(text)
        if not isinstance(answer, dict) or type(answer.get("ok")) is not bool:
            raise ProbeFailed("the kernel's answer is not a record")
        return answer

    def restarted(self):
        """The kernel was restarted: no serving loop runs and the probe is gone."""
        self.serving, self.installed, self.synced_rng = None, False, None

    def finish(self):
        """End the serving loop: the notebook's next cell needs the kernel (or the notebook is done)."""
        for _ in range(3):
            if self.serving is None:
                return
            msg_id, self.serving = self.serving, None
            self.client.input(DONE)
            if self._exchange(msg_id) is not None:  # it asked again instead of stopping
                self.serving = msg_id
        self.serving = None
        raise KernelStuck()  # a probe the notebook made deaf to DONE: restart the kernel

    # -- the exchange with the kernel -----------------------------------------------------
    def _send(self, text):
        if self.serving is None:
            msg_id = self.client.execute("__import__('sys').modules['_pa2_probe'].serve_loop()",
                                         silent=True, store_history=False, allow_stdin=True)
            ready = self._exchange(msg_id)
            if ready != REQUEST_PROMPT:
                raise ProbeFailed("the probe did not ask for a request")
            self.serving = msg_id
        msg_id, self.serving = self.serving, None
        self.client.input(text)
        prompt = self._exchange(msg_id)
        if prompt is None:
            raise ProbeFailed("the probe stopped before it answered")
        self.serving = msg_id
        try:
            return boundary.loads_json(prompt[len(ANSWER_PROMPT):])
        except boundary.BoundaryError as error:
            raise ProbeFailed(f"the kernel's answer is not readable: {error}") from None

    def _exchange(self, msg_id):
        """Wait for the kernel, working on ``msg_id``, to ask for the next request (return that
        prompt) or to finish (return None), answering stand-ins and keeping the deadlines."""
        poller = zmq.Poller()
        channels = {self.client.shell_channel.socket: self.client.shell_channel,
                    self.client.iopub_channel.socket: self.client.iopub_channel,
                    self.client.stdin_channel.socket: self.client.stdin_channel}
        for socket in channels:
            poller.register(socket, zmq.POLLIN)
        reply, idle, interrupted, last_check = None, False, None, time.monotonic()
        while reply is None or not idle:
            now = time.monotonic()
            owner = self._passed(now) if interrupted is None else None
            if owner is not None:
                interrupted = (now, owner)
                self.interrupt()
            if interrupted is not None and now > interrupted[0] + self.grace:
                raise KernelStuck()
            if now - last_check > 1:
                last_check = now
                if not self.is_alive():
                    raise DeadKernelError("Kernel died")
            for socket, _ in poller.poll(timeout=200):
                msg = channels[socket].get_msg(timeout=0)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kind = msg["msg_type"]
                if socket is self.client.shell_channel.socket and kind == "execute_reply":
                    reply = msg["content"]
                elif kind == "status" and msg["content"].get("execution_state") == "idle":
                    idle = True
                elif kind == "input_request":
                    prompt = msg["content"].get("prompt", "")
                    if interrupted is None and isinstance(prompt, str) and (
                            prompt == REQUEST_PROMPT or prompt.startswith(ANSWER_PROMPT)):
                        return prompt
                    self.client.input(self._standin_answer(prompt))
        if interrupted is not None:
            raise TimeUp(interrupted[1])
        if reply.get("status") != "ok":
            raise ProbeFailed(f"the kernel raised {str(reply.get('ename'))[:80]}: {str(reply.get('evalue'))[:300]}")
        return None

    def _standin_answer(self, prompt):
        """The answer to a stand-in's request from the kernel (JSON text), computed here; an
        empty line for any other prompt (the student's own ``input()``)."""
        if not isinstance(prompt, str) or not prompt.startswith(STANDIN_PROMPT):
            return ""  # the student's own input(): an empty line
        try:
            request = boundary.loads_json(prompt[len(STANDIN_PROMPT):])
            name = request.get("name") if isinstance(request, dict) else None
            if name not in self.standins:
                raise ProbeFailed(f"{str(name)[:80]} is not a stand-in of this check")
            self.answered += 1
            if self.answered > 10000:
                raise ProbeFailed("too many stand-in calls in one check")
            args, kwargs = boundary.decode(request.get("args")), boundary.decode(request.get("kwargs"))
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ProbeFailed("malformed stand-in arguments")
            # the kernel's generator, here: its state came with the call, or is the one it had last time
            before, self.synced_rng = self._kernel_rng(request.get("rng")), None
            np.random.set_state(before)
            with WATCHDOG.limit(STANDIN_SECONDS, f"the stand-in {name} on the kernel's arguments"):
                value = self.standins[name](*args, **kwargs)
            if problem := boundary.too_big(value):  # never written out: the kernel could not read it anyway
                raise ValueError(f"the answer of {name} on these arguments is {problem}")
            answer, after = {"ok": True, "value": boundary.encode(value)}, np.random.get_state()
            if not same_generator_state(before, after):  # the call drew from it: the kernel's moves on too
                answer["rng"] = boundary.encode(after)
            text, self.synced_rng = json.dumps(answer, separators=(",", ":")), after
            return text
        except Exception as error:  # whatever goes wrong is the student's call's error, never ours
            return json.dumps({"ok": False, "error": type(error).__name__, "message": str(error)[:2000]})

    def _kernel_rng(self, sent):
        """The kernel's generator state for a stand-in's call: as sent, or (null) as after the last call."""
        if sent is not None:
            return boundary.decode(sent)
        if self.synced_rng is None:
            raise ProbeFailed("the kernel's generator state is missing")
        return self.synced_rng
