"""nbgrader preprocessors of this course: shorter outputs, feedback without hidden code, and
execution that records its progress and judges the tests outside the kernel."""
import asyncio
import copy
import json
import time
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbconvert.preprocessors import Preprocessor
from nbgrader import utils
from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.preprocessors import CheckCellMetadata, Execute
from traitlets import Bool, Integer, Unicode

from .cpu_wait import CpuWait
from .probes import KernelLink, KernelStuck
from .verdicts import HELPERS_CELL, REFERENCE_CELL, CellTimedOut, Judge, cell_source, judged_cells


class ShortenTestTracebacks(Preprocessor):
    """Cut the traceback of every error in an autograder test cell down to its last line.

    IPython tracebacks quote the lines of the cell that raised, which for a hidden test
    would show the hidden code. The last line (``CheckFailed: expected ..., got ...``)
    is the message meant for the student. Used when generating feedback.
    """

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


class _RememberingValidator(MetadataValidator):
    """nbgrader's metadata validator, which checks a cell's type and nbgrader metadata only once
    per process: the outcome depends on nothing else, and a class's notebooks repeat the release's
    cells. Only cells that passed are remembered; the notebook's own checks (unique grade ids)
    run every time."""

    passed = set()

    def validate_cell(self, cell):
        key = json.dumps([cell.get("cell_type"), cell.get("metadata", {}).get("nbgrader")], sort_keys=True, default=repr)
        if key not in self.passed:
            super().validate_cell(cell)
            if len(self.passed) > 10000:
                self.passed.clear()
            self.passed.add(key)


class CheckCellMetadataOnce(CheckCellMetadata):
    """nbgrader's CheckCellMetadata, with each distinct cell checked once per process.

    nbgrader validates every cell's metadata with ``jsonschema.validate``, which checks the schema
    itself each time: 0.15 s a notebook, twice for each submission autograded.
    """

    def preprocess(self, nb, resources):
        try:
            _RememberingValidator().validate_nb(nb)
        except ValidationError:
            return super().preprocess(nb, resources)  # nbgrader's own logging and error
        return nb, resources


class TruncateLongOutputs(Preprocessor):
    """Cut any output of a cell to ``max_chars`` characters, so a flood of printing (even on
    one line, which nbgrader's line-based LimitOutput lets through) cannot bloat the
    autograded notebook. Used when autograding, after execution."""

    enabled = Bool(True).tag(config=True)
    max_chars = Integer(20000, help="characters kept of each text output").tag(config=True)

    def _cut(self, text):
        if len(text) <= self.max_chars:
            return text
        return text[:self.max_chars] + f"\n... [{len(text) - self.max_chars} more characters cut by the grader]\n"

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in output.get("data", {}).items():
                    if mime.startswith("text/") and isinstance(value, str):
                        output.data[mime] = self._cut(value)
            elif output.output_type == "error":
                output.evalue = self._cut(output.evalue)
                output.traceback = [self._cut(line) for line in output.traceback[-50:]]
        return cell, resources


def timeout_output(seconds, stuck=False):
    """The error output of a cell whose time ran out (named as nbgrader names a timeout)."""
    how = ("and ignored the interrupt, so the grader restarted the kernel and ran the earlier cells again"
           if stuck else "and was interrupted")
    return nbformat.v4.new_output("error", ename="CellTimeoutError",
                                  evalue=f"the cell ran for more than {seconds:g} s {how}",
                                  traceback=[f"CellTimeoutError: the cell ran for more than {seconds:g} s {how}"])


def merge_consecutive_streams(outputs):
    """Join each run of stream outputs of the same name into one.

    Where the kernel's flushes split printed text into messages depends on timing; joined,
    the same printing always gives the same outputs (and so the same feedback).
    """
    merged = []
    for output in outputs:
        if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == output.name):
            merged[-1].text += output.text
        else:
            merged.append(output)
    return merged


class PromptKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager, which sees a stopped kernel gone sooner.

    After a shutdown request or a kill, jupyter_client checks every 0.1 s whether the kernel's
    process has exited, so every notebook's shutdown and every restart waits up to 0.1 s for a
    kernel that is already gone (a warm kernel exits within a few ms). Here it checks every
    :attr:`exit_poll` s; the time limits of a shutdown are jupyter_client's own.
    """

    exit_poll = 0.005

    async def _async_wait(self, pollinterval=0.1):
        await super()._async_wait(pollinterval=min(pollinterval, self.exit_poll))


class PromptKernelClient(AsyncKernelClient):
    """jupyter_client's kernel client, ready as soon as the kernel is.

    jupyter_client calls a kernel ready after its ``kernel_info`` reply and one IOPub message,
    then waits for 0.2 s of silence on IOPub: 0.2 s of every notebook's grading, and of every
    restart, spent waiting (a warm kernel answers 0.25 s after it is asked for). Here a kernel is
    ready when IOPub has carried the ``idle`` status of a ``kernel_info`` request it answered:
    IOPub is then connected, and nothing of the handshake is left on it. A request whose status
    went out before IOPub connected is asked again, as jupyter_client does.
    """

    async def _async_wait_for_ready(self, timeout=None):
        deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            msg_id = self.kernel_info()
            reply = await self._message(self.shell_channel, msg_id, "kernel_info_reply", 1)
            if reply is not None and await self._message(self.iopub_channel, msg_id, "status", 0.05, idle=True):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    # AsyncKernelClient binds ``wait_for_ready`` to KernelClient's own function, which an
    # override of ``_async_wait_for_ready`` alone does not replace
    wait_for_ready = _async_wait_for_ready

    @staticmethod
    async def _message(channel, msg_id, msg_type, seconds, idle=False):
        """The next message of ``msg_type`` answering ``msg_id`` on ``channel`` within ``seconds``, or None."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await ensure_async(channel.get_msg(timeout=left))
            except Empty:
                return None
            if (msg["msg_type"] == msg_type and msg["parent_header"].get("msg_id") == msg_id
                    and (not idle or msg["content"].get("execution_state") == "idle")):
                return msg
        return None


class ExecuteRecordingProgress(Execute):
    """nbgrader's Execute, hardened for untrusted notebooks.

    * It notes which cell it is about to run, and when the notebook ends (or the kernel dies)
      writes the last one to ``progress_file`` (when set). When the kernel dies, nbgrader only
      says so; this file says which cell killed it, so the grader can grade the notebook again
      without that cell.
    * A cell gets ``timeout`` seconds, and never more than what is left of the notebook's
      ``notebook_timeout``, so one submission's grading is bounded. Time the kernel spent waiting
      for a CPU, on a machine shared with other workers' kernels, is added to that, up to the
      limit again (``assignment.cpu_wait``): a cell is cut only when its own time ran out.
    * A cell that runs out of time is interrupted. If the kernel ignores the interrupt for
      ``interrupt_grace`` seconds (student code that blocks SIGINT, say), the kernel is
      killed and started again, the cells that ran before are run again to rebuild its state,
      and the stuck cell gets a ``CellTimeoutError``: only that cell loses its points.
    * Runs of printed text are joined into one output, so that outputs do not depend on timing.
    * With ``judge_outside`` (``make grade`` sets it), every test cell that carries points is
      judged in this process from ``master_notebook`` (``assignment.verdicts``), never run in the
      kernel, and the reference code cell is not sent to the kernel at all. Without it (plain
      ``nbgrader autograde``) the tests run in the kernel, as nbgrader runs them.
    """

    judge_outside = Bool(False, help="judge the test cells outside the kernel").tag(config=True)
    master_notebook = Unicode("", help="the master notebook the verdicts come from").tag(config=True)
    progress_file = Unicode("", help="file that names the cell being run").tag(config=True)
    notebook_timeout = Integer(1200, help="seconds for the whole notebook").tag(config=True)
    interrupt_grace = Integer(10, help="seconds to wait for an interrupted cell").tag(config=True)
    max_restarts = Integer(6, help="stuck cells after which the rest is not run").tag(config=True)

    def __init__(self, *args, **kwargs):
        # before nbgrader's Execute sets jupyter_client's manager as a keyword, which config cannot override
        kwargs.setdefault("kernel_manager_class", PromptKernelManager)
        super().__init__(*args, **kwargs)
        self.on_cell_execute = self._record_progress
        self.timeout_func = self._cell_timeout

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._ran, self._restarts, self._msg_id = [], 0, None
        self._judge, self._master, self._judged_ids = None, None, set()
        self._unanswered = set()
        self._running = None
        self._cpu_wait = CpuWait()
        if self.judge_outside:
            self._master = nbformat.read(self.master_notebook, as_version=4)
            self._judged_ids = set(judged_cells(self._master))
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self.progress_file and self._running is not None:  # once, not before every cell
                with open(self.progress_file, "w") as handle:
                    json.dump(self._running, handle)
            if self._judge is not None:
                self._judge.link.close()

    def _judged_here(self, cell):
        """'judge' for a test cell judged outside, 'skip' for the reference cell, else None."""
        if self._master is None or cell.cell_type != "code":
            return None
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == REFERENCE_CELL:
            return "skip"
        return "judge" if grade_id in self._judged_ids else None

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        how = self._judged_here(cell)
        if how is None:
            await self._async_hand_back()
            cell = await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and any(o.get("output_type") == "error" and o.get("ename") == "NotImplementedError"
                                            for o in cell.get("outputs", [])):
                self._unanswered.add(meta.get("grade_id"))  # left as released: no likely mistake for its checks
            return cell
        self._record_progress(cell, cell_index)
        cell.outputs, cell.execution_count = [], None
        if how == "judge":
            seconds = self._cell_timeout(cell)
            loop = asyncio.get_running_loop()
            try:
                cell.outputs = await asyncio.to_thread(self._judge_cell, cell.metadata.nbgrader.grade_id, seconds, loop)
            except CellTimedOut:
                cell.outputs = [timeout_output(seconds)]
        return cell

    execute_cell = run_sync(async_execute_cell)  # nbclient binds its own at class creation

    async def _async_hand_back(self):
        """Before the kernel runs a cell of the notebook (or shuts down), end the probe's serving
        loop, kept open across consecutive judged cells. A probe that will not stop has the
        kernel restarted (and the earlier cells replayed), and no cell is blamed for it."""
        if self._judge is None or self._judge.link.serving is None:
            if self._judge is not None:
                self._judge.notebook_ran()
            return
        try:
            await asyncio.to_thread(self._judge.hand_back)
        except KernelStuck:
            self._restarts += 1
            await self._async_restart_and_replay()

    _hand_back = run_sync(_async_hand_back)

    def _judge_cell(self, grade_id, seconds, loop):
        """Judge one test cell (in a thread, while the event loop stays free for the kernel manager)."""
        def on_loop(coroutine):
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=30)

        if self._judge is None:
            link = KernelLink(self.km.get_connection_info(session=False), cell_source(self._master, HELPERS_CELL),
                              interrupt=lambda: on_loop(ensure_async(self.km.interrupt_kernel())),
                              is_alive=lambda: on_loop(ensure_async(self.km.is_alive())),
                              grace=self.interrupt_grace, cpu_wait=self._cpu_wait)
            self._judge = Judge(self._master, link, str(Path(self.master_notebook).parent))
            self._judge.unanswered = self._unanswered
        return self._judge.judge(grade_id, seconds)

    def _cell_timeout(self, cell):
        return max(1, min(self.timeout, int(self._deadline - time.monotonic())))

    def _record_progress(self, cell, cell_index):
        self._running = {"index": cell_index, "id": cell.get("id"),
                         "grade_id": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")}

    async def _async_poll_for_reply(self, msg_id, cell, timeout, *args, **kwargs):
        self._msg_id, self._seconds = msg_id, timeout or 0
        self._cell_started, self._cell_mark = time.monotonic(), self._cpu_wait.mark()
        return await super()._async_poll_for_reply(msg_id, cell, timeout, *args, **kwargs)

    async def _async_reply_within(self, seconds):
        """The cell's execute reply if it comes within ``seconds``, else None; DeadKernelError
        if the kernel dies meanwhile."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=min(left, 1.0)))
            except Empty:
                await self._async_check_alive()
                continue
            if msg["parent_header"].get("msg_id") == self._msg_id:
                return msg
        return None

    async def _async_handle_timeout(self, timeout, cell=None):
        """When the kernel waited for a CPU during the cell, wait that much longer (at most
        ``timeout`` more) for its reply. Then interrupt; wait ``interrupt_grace`` s for the
        reply; raise KernelStuck without one."""
        while True:
            extension = self._cpu_wait.extension(timeout, self._cell_mark)
            left = self._cell_started + timeout + extension - time.monotonic()
            if left <= 0.01:
                break
            reply = await self._async_reply_within(left)
            if reply is not None:
                return reply
        self.log.error("Timeout waiting for execute reply (%is): interrupting the kernel", timeout)
        await ensure_async(self.km.interrupt_kernel())
        deadline = time.monotonic() + self.interrupt_grace
        while time.monotonic() < deadline:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=max(0.1, deadline - time.monotonic())))
            except Empty:
                break
            if msg["parent_header"].get("msg_id") == self._msg_id:
                return {"content": {**self.error_on_timeout, "status": "error"}}
        raise KernelStuck()

    def preprocess_cell(self, cell, resources, index):
        try:
            return self._preprocess_code_cell(cell, resources, index)
        finally:
            if index == len(self.nb.cells) - 1:  # the kernel shuts down next: free it first
                self._hand_back()

    def _preprocess_code_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._restarts >= self.max_restarts:
            cell.outputs = [nbformat.v4.new_output(
                "error", ename="NotRun", evalue="not run: earlier cells kept the kernel stuck",
                traceback=["NotRun: not run: earlier cells kept the kernel stuck"])]
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            cell.outputs = merge_consecutive_streams(cell.outputs)
        except KernelStuck:
            self._restarts += 1
            cell.outputs = [timeout_output(self._seconds, stuck=True)]
            self._restart_and_replay()
            return cell, resources
        self._ran.append(index)
        return cell, resources

    async def _async_restart_and_replay(self):
        """Kill the stuck kernel, start a new one and run the cells that ran before, quietly."""
        await self._async_restart()
        await ensure_async(self.kc.wait_for_ready(timeout=self.startup_timeout))  # IOPub connected again
        for index in self._ran:
            if self._judged_here(self.nb.cells[index]):  # judged outside: nothing to rebuild in the kernel
                continue
            replay = copy.deepcopy(self.nb.cells[index])
            try:
                await self.async_execute_cell(replay, index, store_history=False)
            except KernelStuck:  # a cell that ran before is stuck now: give up replaying
                self._restarts = self.max_restarts
                await self._async_restart()
                return

    _restart_and_replay = run_sync(_async_restart_and_replay)

    async def _async_restart(self):
        await ensure_async(self.km.restart_kernel(now=True))
        self._cpu_wait.reset()
        if self._judge is not None:
            self._judge.link.restarted()
            self._judge.notebook_ran()
