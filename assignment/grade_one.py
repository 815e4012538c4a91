"""Grade one submission, on whichever machine runs it: the pipeline of a single student.

``grade_submission(task, course)`` needs no shared file system. ``course`` (a
:class:`CourseBundle`, sent once to every worker) carries the course files, and ``task`` the
student's files. Everything happens in a throw-away folder:

1. the notebook is read and repaired against the release (``assignment.intake``), and the
   cells the student wrote are read for tampering (``assignment.tampering``);
2. nbgrader's ``Autograde`` converter runs in this process (no command-line process per
   student), against a private copy of a gradebook that holds only the assignment, with the
   kernel in the sandbox (``assignment.sandbox``) talking over Unix sockets;
3. a cell that kills the kernel is left out and the notebook graded again;
4. nbgrader's ``GenerateFeedback`` writes the feedback HTML.

What comes back (:class:`Graded`) is what the coordinator keeps: the autograded notebook, the
feedback, the repair notes and flags, or the reason nothing could be scored. Only the
coordinator writes to the real gradebook (``assignment.gradebook``), so the grading kernel
never sees credentials or the network.
"""
import atexit
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from nbgrader.converters import Autograde, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import capture_log

from . import ASSIGNMENT, NOTEBOOK, ROOT, cpu_groups, worker_folders
from .gradebook import PRIVATE_GRADEBOOK_FOLDERS, course_config
from .intake import SubmissionProblem, is_student_cell, prepare_submission
from .preprocessors import PromptKernelClient
from .sandbox import GRADER_PID, bwrap_works
from .tampering import describe_findings, scan_notebook
from .warm_kernels import LAUNCHER_SCRIPT, kernels_wanted, warm_kernels
from .watchdog import WATCHDOG

KERNEL_NAME = "pa2-sandbox"
#: The kernelspec of warm kernels, forked from the worker's template (``assignment.warm_kernels``).
WARM_KERNEL_NAME = "pa2-warm"
#: Options of every grading kernel, fresh or warm (its kernelspec passes them on to ipykernel).
#: Figures are PNGs, lossless whatever the zlib level: level 1 draws the same pixels 10 to 20 ms
#: sooner per figure than the default 6, for files about 5 % larger.
KERNEL_OPTIONS = (
    "--InlineBackend.print_figure_kwargs={'bbox_inches': 'tight', 'pil_kwargs': {'compress_level': 1}}",
)
#: Seconds for the whole notebook of one submission; each cell also has its own limit.
SUBMISSION_TIMEOUT = 20 * 60
#: Seconds one autograde pass may take in all. The notebook's own limits end it well before: past
#: its 20 minutes each cell still gets 1 s and an interrupt's 10 s of grace, and up to 6 kernel
#: restarts replay the cells before; 10 minutes more covers those for any notebook whose cells run
#: in under a minute and a half. Past this a grader thread is stuck in its own work, and the worker
#: process ends (``assignment.watchdog``).
AUTOGRADE_WATCHDOG = SUBMISSION_TIMEOUT + 10 * 60
KERNEL_DIED = ("the kernel died while running the notebook (os._exit, a crash in compiled code, "
               "or the memory cap)")
#: Why a submission whose warm kernel died was graded with a fresh kernel.
WARM_DIED = "a warm kernel died where a fresh one did not"
#: What the canary kernel runs: what every notebook does (BLAS threads, a figure drawn), no student code.
CANARY_CODE = ("import numpy as np\nimport matplotlib.pyplot as plt\nsquare = np.ones((300, 300))\n"
               "plt.plot((square @ square).sum(axis=0)[:3])\nplt.show()\nprint('canary alive')")
#: What a cell that killed the kernel is replaced with when the notebook is graded again.
KILLED_CELL_STUB = ('raise RuntimeError("This cell stopped the grading kernel (os._exit, a crash '
                    'or running out of memory), so the grader did not run it.")')


@dataclass(frozen=True)
class CourseBundle:
    """What a worker needs of the course, as bytes: sent once to each worker.

    ``source`` maps file names of ``source/<assignment>/`` (the master notebook and its data)
    to their bytes; ``gradebook`` is an SQLite gradebook holding only the assignment.
    """
    config: bytes
    source: dict
    release: bytes
    gradebook: bytes

    @property
    def digest(self):
        """A short hash of everything in the bundle (part of every result's fingerprint)."""
        h = hashlib.sha256(self.config + self.release)
        for name in sorted(self.source):
            h.update(name.encode() + b"\0" + self.source[name])
        return h.hexdigest()[:16]


@dataclass
class Task:
    """One submission to grade: ``files`` maps paths inside ``submitted/<student_id>/`` to bytes."""
    student_id: str
    files: dict
    feedback: bool = True


@dataclass
class Graded:
    """What grading one submission produced, for the coordinator to keep.

    ``problem`` is empty when the notebook was autograded; then ``notebook`` is the
    autograded notebook (JSON text) and ``feedback`` its HTML (or empty, with the reason in
    ``notes``). ``sandboxed`` says whether the kernel ran inside bubblewrap; ``kernels`` is
    ``"warm"``, or ``"fresh"`` followed by why warm kernels were not used when they were wanted.
    ``shared_cpu`` is empty when the worker had a CPU group of its own, else why it had none.
    """
    student_id: str
    problem: str = ""
    notes: list = field(default_factory=list)
    flag: str = ""
    notebook: str = ""
    feedback: str = ""
    timestamp: str = ""
    sandboxed: bool = False
    kernels: str = "fresh"
    shared_cpu: str = ""
    seconds: float = 0.0
    worker: str = ""


def course_bundle(root=ROOT, gradebook=b""):
    """Read the course files a worker needs from the course at ``root``."""
    source_dir = root / "source" / ASSIGNMENT
    return CourseBundle(config=(root / "nbgrader_config.py").read_bytes(),
                        source={p.name: p.read_bytes() for p in sorted(source_dir.iterdir()) if p.is_file()},
                        release=(root / "release" / ASSIGNMENT / NOTEBOOK).read_bytes(),
                        gradebook=gradebook)


def write_files(folder, files):
    """Write ``files`` (relative path -> bytes) under ``folder``, refusing paths that leave it."""
    folder = Path(folder).resolve()
    for name, content in files.items():
        path = (folder / name).resolve()
        if folder not in path.parents:
            raise SubmissionProblem(f"the submission has a file outside its folder: {name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


_KERNELS = {}


def kernels_dir():
    """A folder holding the kernelspecs of the sandboxed kernel, fresh and warm, made once per process."""
    if "dir" not in _KERNELS:
        folder = Path(worker_folders.make("pa2-kernels-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)  # or the next worker's make(), if this one is killed
        for name, script, label in ((KERNEL_NAME, Path(__file__).with_name("sandbox.py"), "sandboxed"),
                                    (WARM_KERNEL_NAME, LAUNCHER_SCRIPT, "sandboxed, warm")):
            spec_dir = folder / "kernels" / name
            spec_dir.mkdir(parents=True)
            spec = {"argv": [sys.executable, str(script), "{connection_file}", *KERNEL_OPTIONS],
                    "display_name": f"PA2 grading ({label})", "language": "python", "interrupt_mode": "message"}
            (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
        _KERNELS["dir"], _KERNELS["sandbox"] = folder, bwrap_works()
    return _KERNELS["dir"], _KERNELS["sandbox"]


def socket_folder(runtime):
    """The folder of a kernel's IPC sockets in its runtime folder ``runtime``: the only folder
    the kernel may write in, made here if missing."""
    folder = Path(runtime) / "sockets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def nbgrader_config(course, runtime, kernel_name=KERNEL_NAME):
    """The course's nbgrader_config.py, pointed at the throw-away course folder ``course``."""
    config = course_config(course, f"sqlite:///{course / 'gradebook.db'}")
    config.Execute.kernel_name = kernel_name
    config.AsyncKernelManager.client_factory = PromptKernelClient  # ready 0.2 s sooner than jupyter_client's
    config.KernelManager.transport = "ipc"
    # The kernel may write only in the folder of its IPC sockets: never where the grader keeps
    # files it opens again (the connection file, which jupyter_client reads at each restart, and
    # the progress file), which a kernel could otherwise swap for a FIFO or a symbolic link.
    config.KernelManager.ip = str(socket_folder(runtime) / "kernel")
    config.KernelManager.connection_file = str(runtime / "kernel.json")  # not in the shared /tmp
    config.ExecuteRecordingProgress.progress_file = str(runtime / "progress.json")
    config.ExecuteRecordingProgress.notebook_timeout = SUBMISSION_TIMEOUT
    config.ExecuteRecordingProgress.judge_outside = True  # verdicts in this process, never in the kernel
    config.ExecuteRecordingProgress.master_notebook = str(course / "source" / ASSIGNMENT / NOTEBOOK)
    return config


def run_converter(converter_class, config, student_id):
    """Run an nbgrader converter for one student in this process; return (ok, log text)."""
    coursedir = CourseDirectory(config=config)
    coursedir.student_id = student_id
    app = converter_class(coursedir=coursedir, config=config)
    app.force = True
    if converter_class is Autograde:
        app.create_student = True
    result = capture_log(app)
    return result["success"], result.get("log", "") + result.get("error", "")


def last_error(log):
    """The most useful line of an nbgrader log that reports a failure."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line.replace("[ERROR] ", "") for line in lines if "[ERROR]" in line or "Error" in line]
    return (errors[-1] if errors else (lines[-1] if lines else "no output"))[:300]


def autograde(course, student_id, config, runtime):
    """Autograde the staged submission; return (problem or "", the cell running when the kernel died).

    Each run (the first, and each after a cell that killed the kernel was left out) starts with an
    empty sockets' folder, the one folder a kernel may write in: nothing a kernel of an earlier run
    learned there (the instructor's answers to inputs of its choosing, from a stand-in, say) is
    seen by the next.
    """
    progress = runtime / "progress.json"
    progress.unlink(missing_ok=True)
    shutil.rmtree(socket_folder(runtime))
    socket_folder(runtime)
    with WATCHDOG.limit(AUTOGRADE_WATCHDOG, f"autograding {student_id!r}"):
        ok, log = run_converter(Autograde, config, student_id)
    if ok and (course / "autograded" / student_id / ASSIGNMENT / NOTEBOOK).exists():
        return "", None
    if "DeadKernelError" in log or "Kernel died" in log:
        return KERNEL_DIED, json.loads(progress.read_text()) if progress.exists() else None
    return f"nbgrader autograde failed: {last_error(log)}", None


def skip_killer_cell(notebook_path, culprit):
    """Replace the student cell that killed the kernel; return its label, or None when the
    cell is not the student's (a test cell whose call of a student function killed the kernel)."""
    nb = nbformat.read(notebook_path, as_version=4)
    for number, cell in enumerate(nb.cells, start=1):
        if cell.get("id") == culprit.get("id"):
            if cell.cell_type != "code" or not is_student_cell(cell.metadata.get("nbgrader", {})):
                return None
            cell.source = KILLED_CELL_STUB
            nbformat.write(nb, notebook_path)
            return cell.metadata.get("nbgrader", {}).get("grade_id") or f"#{number}"
    return None


def autograde_surviving_killers(course, student_id, config, runtime, notes):
    """Autograde; while a student cell kills the kernel, leave it out and grade again (3 times at most)."""
    staged = course / "submitted" / student_id / ASSIGNMENT / NOTEBOOK
    problem, culprit = autograde(course, student_id, config, runtime)
    skipped = []
    while problem == KERNEL_DIED and culprit and len(skipped) < 3:
        label = skip_killer_cell(staged, culprit)
        if label is None:
            problem += f", in test cell {culprit.get('grade_id')}"
            break
        skipped.append(label)
        problem, culprit = autograde(course, student_id, config, runtime)
    if skipped:
        notes.append(f"graded again without cell {', '.join(skipped)}, which stopped the kernel")
    if problem.startswith(KERNEL_DIED):
        problem += "; nothing could be scored"
    return problem


def warm_kernel_works(template):
    """Whether a kernel forked from ``template`` runs :data:`CANARY_CODE` and answers: a warm
    kernel with no student code in it, started as grading starts one (kernelspec, launcher,
    sandboxed folders in the template's grading folder)."""
    kernels, _ = kernels_dir()
    work = Path(tempfile.mkdtemp(prefix="pa2-canary-", dir=template.folder))
    runtime, notebook_dir = work / "run", work / "notebook"
    notebook_dir.mkdir()
    manager = KernelManager(kernel_name=WARM_KERNEL_NAME, transport="ipc",
                            ip=str(socket_folder(runtime) / "kernel"), connection_file=str(runtime / "kernel.json"),
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels / "kernels")]))
    client, printed = None, []
    try:
        manager.start_kernel(cwd=str(notebook_dir), env={**os.environ, "PA2_WARM_TEMPLATE": template.socket})
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(CANARY_CODE, timeout=60, output_hook=lambda message: printed.append(
            message["content"].get("text", "")) if message["msg_type"] == "stream" else None)
        return reply["content"]["status"] == "ok" and "canary alive" in "".join(printed) and manager.is_alive()
    except Exception:  # it died, or never answered
        return False
    finally:
        if client is not None:
            client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
        shutil.rmtree(work, ignore_errors=True)


def worker_name():
    """The Dask worker's name (its address if unnamed), or the host's name outside Dask."""
    try:
        from distributed import get_worker
        worker = get_worker()
        return str(worker.name if worker.name is not None else worker.address)
    except (ImportError, ValueError):
        return os.uname().nodename


def grade_submission(task, course):
    """Grade ``task`` (a :class:`Task`) with the course files ``course``; return :class:`Graded`.

    With warm kernels, a submission during which the template died (its kernels die with it) is
    graded again from the start with fresh kernels, so nothing is lost or blamed on the student.
    So is one whose warm kernel died: when a fresh kernel does not die, warm kernels are given up
    on this worker (they cannot work here) and the fresh grading stands.
    """
    started = time.perf_counter()
    # before any kernel starts: what the notebook starts shares only this worker's CPU
    _, shared_cpu = cpu_groups.join()
    template, kernels = None, "fresh"
    if kernels_wanted() == "warm":
        warm = warm_kernels()
        template = warm.template_for_next_submission()
        kernels = "warm" if template is not None else f"fresh ({warm.problem})"
    result = _grade_submission(task, course, template)
    if template is not None and not template.alive():
        result = _grade_submission(task, course, None)
        kernels = "fresh (the template kernel died while grading this submission, which was graded again)"
    elif template is not None and result.problem.startswith(KERNEL_DIED):
        fresh = _grade_submission(task, course, None)
        if not fresh.problem.startswith(KERNEL_DIED):
            result, kernels = fresh, f"fresh ({WARM_DIED})"
            # the student's code may die in warm kernels on purpose: only a kernel with no
            # student code in it tells whether warm kernels fail on this machine
            if not warm_kernel_works(template):
                warm.give_up(f"{WARM_DIED}, and so did one that ran no student code (see the README: Warm kernels)")
                kernels = f"fresh ({warm.problem})"
    result.kernels, result.shared_cpu = kernels, shared_cpu
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _grade_submission(task, course, template):
    """Grade ``task`` with warm kernels forked from ``template``, or fresh kernels when it is None."""
    result = Graded(task.student_id, worker=worker_name())
    kernels, result.sandboxed = kernels_dir()
    # with warm kernels the work folder is in the template's grading folder, the only one it sees;
    # either way it is in a folder of this worker's own, which goes with it if it is killed
    work = Path(tempfile.mkdtemp(prefix="pa2-grade-", dir=template.folder if template else kernels))
    PRIVATE_GRADEBOOK_FOLDERS.add(str(work))
    saved_env = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "JUPYTER_RUNTIME_DIR", "PA2_SANDBOX", "TMPDIR",
                                                 "PA2_WARM_TEMPLATE", GRADER_PID)}
    try:
        home, runtime = work / "course", work / "run"
        runtime.mkdir()
        home.mkdir()
        (home / "nbgrader_config.py").write_bytes(course.config)
        (home / "gradebook.db").write_bytes(course.gradebook)
        write_files(home / "source" / ASSIGNMENT, course.source)
        release = work / "release.ipynb"
        release.write_bytes(course.release)
        received = work / "received" / task.student_id
        write_files(received, task.files)
        staging = home / "submitted" / task.student_id
        try:
            repairs, notebook = prepare_submission(received, staging, release)
        except SubmissionProblem as problem:
            result.problem = str(problem)
            return result
        result.notes = [f"repaired: {note}" for note in repairs]
        result.flag = describe_findings(scan_notebook(notebook, is_student_cell))
        timestamp = staging / ASSIGNMENT / "timestamp.txt"
        result.timestamp = timestamp.read_text().strip() if timestamp.exists() else ""
        # the connection file and sockets go to a folder of this submission's own
        os.environ.update({"JUPYTER_PATH": str(kernels), "JUPYTER_RUNTIME_DIR": str(runtime), "TMPDIR": str(runtime),
                           "PA2_SANDBOX": "bwrap" if result.sandboxed else "none", GRADER_PID: str(os.getpid())})
        if template is not None:
            os.environ["PA2_WARM_TEMPLATE"] = template.socket
        config = nbgrader_config(home, runtime, WARM_KERNEL_NAME if template is not None else KERNEL_NAME)
        result.problem = autograde_surviving_killers(home, task.student_id, config, runtime, result.notes)
        if result.problem:
            return result
        graded = home / "autograded" / task.student_id / ASSIGNMENT / NOTEBOOK
        result.notebook = graded.read_text()
        if not task.feedback:
            return result
        ok, log = run_converter(GenerateFeedback, config, task.student_id)
        html = home / "feedback" / task.student_id / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")
        if ok and html.exists():
            result.feedback = html.read_text()
        else:
            result.notes.append(f"feedback failed: {last_error(log)}")
        return result
    except Exception as error:  # never lose the batch to one submission
        result.problem = f"grading stopped: {type(error).__name__}: {error}"[:300]
        return result
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        PRIVATE_GRADEBOOK_FOLDERS.discard(str(work))
        shutil.rmtree(work, ignore_errors=True)
