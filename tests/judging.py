"""A real kernel and the grader's judge, without nbgrader: for tests of the probe and the verdicts.

``JudgedKernel(answers)`` starts a kernel, runs the master notebook's checking helpers and the
given answer cells in it (never the reference code), and judges test cells of the master
notebook outside it, as ``make grade`` does.
"""
import nbformat
from jupyter_client import KernelManager

from assignment import NOTEBOOK, SOURCE_DIR
from assignment.probes import KernelLink
from assignment.verdicts import HELPERS_CELL, Judge, cell_source

MASTER = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)


class JudgedKernel:
    def __init__(self, *cells):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel()
        self.kc = self.km.blocking_client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.link = KernelLink(self.km.get_connection_info(session=False), cell_source(MASTER, HELPERS_CELL),
                               interrupt=self.km.interrupt_kernel, is_alive=self.km.is_alive, grace=5)
        self.judge = Judge(MASTER, self.link, str(SOURCE_DIR))
        self.run(cell_source(MASTER, HELPERS_CELL), *cells)

    def run(self, *cells):
        """Run ``cells`` in the kernel as notebook cells; return what they printed."""
        printed = []
        for source in cells:
            reply = self.execute(source, output_hook=lambda m: printed.append(
                m["content"].get("text", "") if m["msg_type"] == "stream" else ""))
            assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(printed)

    def execute(self, source, **kwargs):
        """Run ``source`` in the kernel as a notebook cell would run (the judge hands it back first);
        return the execute reply."""
        self.judge.hand_back()
        return self.kc.execute_interactive(source, timeout=120, **kwargs)

    def verdict(self, grade_id, seconds=60):
        """The outputs of test cell ``grade_id`` judged outside the kernel; [] means passed."""
        return [o for o in self.judge.judge(grade_id, seconds) if o.output_type == "error"]

    def close(self):
        self.link.close()
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
