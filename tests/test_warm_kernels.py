"""Warm kernels, with the real mechanism: kernels forked from a worker's template, each in its own
namespaces, see nothing of each other, keep nothing of the one before, start as a fresh kernel
would, and a template killed mid-grading loses no submission."""
import ast
import base64
import io
import json
import os
import socket
import threading
import time
from pathlib import Path

import nbformat
import pytest
from jupyter_client import KernelManager
from matplotlib import image as plt_image

from assignment import ASSIGNMENT, NOTEBOOK, SUBMITTED_DIR, copy_course
from assignment.grade_one import (KERNEL_NAME, WARM_KERNEL_NAME, Task, course_bundle, grade_submission, kernels_dir,
                                  socket_folder)
from assignment.gradebook import template_gradebook
from assignment.sandbox import ETC_NEEDED, TMPFS_MB, bwrap_works
from assignment.warm_kernels import WarmKernels

from .hostile import good_notebook

pytestmark = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not usable on this machine")


@pytest.fixture(scope="module")
def template():
    warm = WarmKernels()
    running = warm.template_for_next_submission()
    assert running is not None, warm.problem
    yield running
    warm.stop()


class Kernel:
    """A kernel as nbgrader starts it: a kernelspec, IPC sockets in a runtime folder of its own,
    the notebook's folder (a data file and the notebook) as its working folder."""

    def __init__(self, template, kernel_name=WARM_KERNEL_NAME):
        kernels, _ = kernels_dir()
        work = Path(os.path.join(template.folder, f"kernel-{time.monotonic_ns()}"))
        self.runtime, self.notebook_dir = work / "run", work / "notebook"
        self.runtime.mkdir(parents=True)
        self.notebook_dir.mkdir()
        (self.notebook_dir / "data.npy").write_bytes(b"data")
        (self.notebook_dir / "clustering.ipynb").write_text("the hidden tests")
        os.environ.update({"JUPYTER_PATH": str(kernels), "PA2_WARM_TEMPLATE": template.socket})
        self.manager = KernelManager(kernel_name=kernel_name, transport="ipc",
                                     ip=str(socket_folder(self.runtime) / "kernel"),
                                     connection_file=str(self.runtime / "kernel.json"))
        self.manager.start_kernel(cwd=str(self.notebook_dir))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code):
        """Run ``code``; return what it printed (an error's name and value, if it raised)."""
        printed = []

        def keep(message):
            content = message["content"]
            if message["msg_type"] == "stream":
                printed.append(content["text"])
            elif message["msg_type"] == "error":
                printed.append(f"{content['ename']}: {content['evalue']}")
        self.client.execute_interactive(code, timeout=60, output_hook=keep)
        return "".join(printed)

    def value(self, expression):
        return json.loads(self.run(f"import json as _j; print(_j.dumps({expression}))"))

    def shutdown(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def host_processes_with(marker):
    found = []
    for pid in os.listdir("/proc"):
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            pass
    return found


STATE = ("{'env': dict(__import__('os').environ), 'cwd': __import__('os').getcwd(), "
         "'files': sorted(__import__('os').listdir('.')), 'path': __import__('sys').path, "
         "'blas': sorted((i['internal_api'], i['num_threads']) for i in __import__('threadpoolctl').threadpool_info()), "
         "'memory': __import__('resource').getrlimit(__import__('resource').RLIMIT_AS), 'uid': __import__('os').getuid(), "
         "'pids': sorted(int(p) for p in __import__('os').listdir('/proc') if p.isdigit())}")


def test_a_warm_kernel_starts_as_a_fresh_kernel_would(template):
    states = {}
    for name in (KERNEL_NAME, WARM_KERNEL_NAME):
        kernel = Kernel(template, name)
        try:  # after the notebook's imports, which set the BLAS pools and some variables
            kernel.run("import numpy, scipy.spatial.distance, sklearn.decomposition, matplotlib.pyplot")
            states[name] = kernel.value(STATE)
            caps = kernel.run("print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])").strip()
        finally:
            kernel.shutdown()
    fresh, warm = states[KERNEL_NAME], states[WARM_KERNEL_NAME]
    for state in (fresh, warm):  # each in its own folder, so compare where it is, not its name
        state["path"] = [p.replace(state["cwd"], "<notebook folder>") for p in state["path"]]
        state["cwd"] = state["env"]["PWD"] = "<notebook folder>"
    assert warm == fresh
    assert warm["files"] == ["data.npy"]  # the data, not the notebook
    assert warm["pids"] == [1, 2]  # its own PID namespace: its supervisor and itself
    assert caps == "0000000000000000"  # no capability at all, even inside its namespaces


#: In a kernel: its capabilities, and whether it can make a user namespace or mount the cgroup file system.
CONFINED = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
caps = open("/proc/self/status").read().split("CapEff:")[1].split()[0]
os.makedirs("/tmp/cg", exist_ok=True)
mount = "mounted" if libc.mount(b"cgroup", b"/tmp/cg", b"cgroup", 0, b"cpu") == 0 else os.strerror(ctypes.get_errno())
userns = "made" if libc.unshare(0x10000000) == 0 else os.strerror(ctypes.get_errno())
print(caps, mount, userns, sep="|")"""


def test_no_kernel_can_make_a_user_namespace_or_mount_anything(template):
    """Fresh or warm, a kernel has no capability, and cannot make a user namespace (in which it
    would have them all) nor mount the cgroup file system (to change its worker's CPU share)."""
    for name in (KERNEL_NAME, WARM_KERNEL_NAME):
        kernel = Kernel(template, name)
        try:
            caps, mount, userns = kernel.run(CONFINED).strip().split("|")
        finally:
            kernel.shutdown()
        assert caps == "0000000000000000", f"{name}: expected no capability, got {caps}"
        assert mount != "mounted", f"{name}: expected the cgroup file system not mountable, got it mounted"
        assert userns != "made", f"{name}: expected no user namespace made, got one"


def _shown_png(kernel, code):
    """The PNG bytes of the one figure ``code`` shows in ``kernel``."""
    shown = []
    kernel.client.execute_interactive(code, timeout=60, output_hook=lambda m: shown.append(
        m["content"]["data"]["image/png"]) if m["msg_type"] == "display_data" else None)
    [png] = shown
    return base64.b64decode(png)


def test_fresh_and_warm_kernels_draw_the_same_figures_with_fast_compression(template):
    """Both kinds of kernel get the grading kernels' options: a figure is the PNG matplotlib draws
    (bbox_inches='tight'), the same pixels, its zlib stream made at level 1 (header 78 01)."""
    pictures = {}
    for name in (KERNEL_NAME, WARM_KERNEL_NAME):
        kernel = Kernel(template, name)
        try:
            shown = _shown_png(kernel, "%matplotlib inline\nimport matplotlib.pyplot as plt\n"
                                       "plt.scatter([0, 1, 2], [2, 0, 1], c=[0, 1, 2]); plt.title('k = 3'); plt.show()")
            default = kernel.run("import io, base64, matplotlib.pyplot as plt\nplt.scatter([0, 1, 2], [2, 0, 1], "
                                 "c=[0, 1, 2]); plt.title('k = 3')\nbuffer = io.BytesIO()\nplt.gcf().savefig(buffer, "
                                 "format='png', bbox_inches='tight')\nplt.close('all')\n"
                                 "print(base64.b64encode(buffer.getvalue()).decode())")
        finally:
            kernel.shutdown()
        level = shown[shown.index(b"IDAT") + 4:shown.index(b"IDAT") + 6]
        assert level == b"\x78\x01", f"{name}: expected zlib level 1 (78 01), got {level.hex()}"
        pictures[name] = [plt_image.imread(io.BytesIO(png)) for png in (shown, base64.b64decode(default))]
    for name, (shown, default) in pictures.items():
        assert shown.shape == default.shape and (shown == default).all(), f"{name}: expected the default's pixels"
    assert (pictures[KERNEL_NAME][0] == pictures[WARM_KERNEL_NAME][0]).all()


def test_two_kernels_see_neither_files_nor_processes_of_each_other(template):
    first, second = Kernel(template), Kernel(template)
    try:
        first.run("import subprocess; open('/tmp/first', 'w').write('x'); open('mine', 'w').write('x'); "
                  "child = subprocess.Popen(['sleep', '977.5'])")
        seen = second.value("{'tmp': __import__('os').listdir('/tmp'), 'here': __import__('os').listdir('.'), "
                            "'sleep': [p for p in __import__('os').listdir('/proc') if p.isdigit() and "
                            "b'977.5' in open(f'/proc/{p}/cmdline', 'rb').read()], "
                            "'pids': sorted(int(p) for p in __import__('os').listdir('/proc') if p.isdigit())}")
        assert "first" not in seen["tmp"] and "mine" not in seen["here"]
        assert seen["sleep"] == [] and seen["pids"] == [1, 2]
        assert host_processes_with(b"977.5")  # it does run, in the first kernel's namespace
    finally:
        first.shutdown()
        second.shutdown()
    deadline = time.monotonic() + 10
    while host_processes_with(b"977.5") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert host_processes_with(b"977.5") == []  # gone with its kernel's PID namespace


def test_nothing_one_kernel_changes_reaches_the_next(template):
    first = Kernel(template)
    try:
        first.run("import os, numpy, matplotlib, matplotlib.pyplot as plt, subprocess\n"
                  "open('/tmp/left', 'w').write('x'); os.makedirs('/dev/shm/left', exist_ok=True)\n"
                  "os.environ['LEFT'] = '1'; numpy.LEFT = 1; numpy.mean = None\n"
                  "matplotlib.rcParams['lines.linewidth'] = 9; plt.figure(); plt.plot([1, 2])\n"
                  "subprocess.Popen(['sleep', '978.5'], start_new_session=True)")
        assert first.value("[__import__('os').environ.get('LEFT'), __import__('numpy').mean is None]") == ["1", True]
    finally:
        first.shutdown()
    second = Kernel(template)
    try:
        assert second.value(
            "{'tmp': 'left' in __import__('os').listdir('/tmp'), 'shm': __import__('os').listdir('/dev/shm'), "
            "'env': __import__('os').environ.get('LEFT'), 'module': hasattr(__import__('numpy'), 'LEFT'), "
            "'mean': __import__('numpy').mean([1, 3]), "
            "'width': __import__('matplotlib').rcParams['lines.linewidth'], "
            "'figures': __import__('matplotlib.pyplot').pyplot.get_fignums()}"
        ) == {"tmp": False, "shm": [], "env": None, "module": False, "mean": 2.0, "width": 1.5, "figures": []}
    finally:
        second.shutdown()
    assert host_processes_with(b"978.5") == []


def test_what_the_template_imported_is_out_of_a_kernels_garbage_collections(template):
    """The template freezes what its imports made (gc.freeze): a warm kernel's full collections
    walk only what the notebook made, where a fresh kernel's walk every object of NumPy, SciPy,
    Matplotlib and IPython too. Collecting finds the same garbage either way."""
    counts = {}
    for name in (KERNEL_NAME, WARM_KERNEL_NAME):
        kernel = Kernel(template, name)
        try:
            kernel.run("import numpy, scipy.spatial.distance, sklearn.decomposition, matplotlib.pyplot")
            counts[name] = kernel.value(
                "(lambda gc: [gc.get_freeze_count(), len(gc.get_objects()), "
                "[gc.collect(), gc.collect(), (lambda a: a.append(a))([]), gc.collect()][1:]])(__import__('gc'))")
        finally:
            kernel.shutdown()
    (fresh_frozen, fresh_walked, fresh_found), (warm_frozen, warm_walked, warm_found) = counts.values()
    assert fresh_frozen == 0 and warm_frozen > 100_000
    assert warm_walked < fresh_walked / 5, (warm_walked, fresh_walked)
    assert warm_found == fresh_found == [0, None, 1]  # a cycle made after the freeze is still collected


def test_random_state_differs_between_kernels(template):
    draws = []
    for _ in range(2):
        kernel = Kernel(template)
        try:
            draws.append(kernel.value("[__import__('numpy').random.rand(), __import__('random').random()]"))
        finally:
            kernel.shutdown()
    assert draws[0][0] != draws[1][0] and draws[0][1] != draws[1][1]


def test_the_network_is_unreachable_and_the_grading_folder_unseen(template):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    kernel = Kernel(template)
    try:
        reached = kernel.run(f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {server.getsockname()[1]}), 3)\n"
                             "    print('connected')\nexcept OSError as error:\n    print('failed', error)")
        folder = kernel.value(f"[__import__('os').path.exists(p) for p in ({template.folder!r}, "
                              f"{str(Path(template.folder) / 'template.sock')!r}, '/run/pa2-grading/template.sock')]")
        writable = kernel.run("for place in ('/', '/usr', '/dev', '/etc'):\n    try:\n        open(place + '/x', 'w')\n"
                              "        print(place)\n    except OSError:\n        pass")
    finally:
        kernel.shutdown()
    with pytest.raises(TimeoutError):
        server.accept()
    server.close()
    assert reached.startswith("failed")
    assert folder == [True, False, False]  # the path to its own folder only, nothing else of the grading folder
    assert writable == ""


#: Run in a kernel: what it could change of the runtime folder the grader keeps around its sockets.
SWAP_RUNTIME_FILES = """import os, sys
connection_file = [a for a in sys.argv if a.endswith(".json")][0]
runtime = os.path.dirname(connection_file)
attempts = {
    "fifo for the connection file": lambda: (os.remove(connection_file), os.mkfifo(connection_file)),
    "connection file written": lambda: open(connection_file, "w").close(),
    "link for the progress file": lambda: os.symlink("/etc/hostname", os.path.join(runtime, "progress.json")),
    "file in the sockets' folder": lambda: open(os.path.join(runtime, "sockets", "mine"), "w").close(),
}
for what, attempt in attempts.items():
    try:
        attempt()
        print(what)
    except OSError:
        pass
"""


@pytest.mark.parametrize("kernel_name", [WARM_KERNEL_NAME, KERNEL_NAME])
def test_a_kernel_writes_only_in_its_sockets_folder_never_what_the_grader_opens_again(template, kernel_name):
    """A kernel that could swap its connection file for a FIFO would block the grader, which opens
    it again at a restart; one that could put a link where the grader writes its progress file
    would have the grader write through it, outside. Only the sockets' folder is the kernel's."""
    kernel = Kernel(template, kernel_name)
    try:
        connection = (kernel.runtime / "kernel.json").read_bytes()
        done = kernel.run(SWAP_RUNTIME_FILES).splitlines()
        seen = {"runtime": sorted(p.name for p in kernel.runtime.iterdir()),
                "sockets": [p.name for p in (kernel.runtime / "sockets").iterdir() if p.name == "mine"],
                "connection file": (kernel.runtime / "kernel.json").read_bytes() == connection}
    finally:
        kernel.shutdown()
    assert [what for what in done if what.startswith(("fifo", "connection"))] == [], done
    # the link, if made, is in the kernel's own in-memory /tmp: the grader sees nothing of it
    assert seen == {"runtime": ["kernel.json", "sockets"], "sockets": ["mine"], "connection file": True}, seen


#: Run in a kernel: for each folder it may write in, its size in MB (None where it cannot write),
#: then how many MB fit in its /tmp, written 16 MB at a time until the folder is full.
IN_MEMORY_FOLDERS = """import errno, os
sizes = {}
for folder in ('/tmp', '.', '/dev/shm', '/dev'):
    writable = os.access(folder, os.W_OK) and not os.statvfs(folder).f_flag & os.ST_RDONLY
    sizes[folder] = os.statvfs(folder).f_blocks * os.statvfs(folder).f_frsize // 2**20 if writable else None
written = 0
try:
    with open('/tmp/filler', 'wb') as handle:
        while written < 4096:
            handle.write(b'x' * 2**24)
            handle.flush()
            written += 16
except OSError as error:
    stopped = errno.errorcode[error.errno]
else:
    stopped = 'not stopped'
os.remove('/tmp/filler')
print(repr((sizes, written, stopped)))
"""


@pytest.mark.parametrize("kernel_name", [WARM_KERNEL_NAME, KERNEL_NAME])
def test_a_kernel_cannot_fill_the_machines_memory_through_its_in_memory_folders(template, kernel_name):
    """What a kernel writes in its in-memory folders is memory its address-space cap does not
    count: each folder it may write in holds at most TMPFS_MB, and filling /tmp stops there."""
    kernel = Kernel(template, kernel_name)
    try:
        sizes, written, stopped = ast.literal_eval(kernel.run(IN_MEMORY_FOLDERS))
    finally:
        kernel.shutdown()
    too_big = {folder: mb for folder, mb in sizes.items() if mb is not None and mb > TMPFS_MB}
    assert too_big == {}, f"expected every writable in-memory folder at most {TMPFS_MB} MB, got {sizes}"
    assert stopped == "ENOSPC" and written <= TMPFS_MB, \
        f"expected /tmp full (ENOSPC) by {TMPFS_MB} MB, got {stopped} after {written} MB"


@pytest.mark.parametrize("kernel_name", [WARM_KERNEL_NAME, KERNEL_NAME])
def test_a_kernel_sees_of_etc_only_what_the_system_and_python_need(template, kernel_name):
    """Bound whole, /etc showed a kernel run as root /etc/shadow and whatever secret an
    instructor's machine keeps there; a kernel sees only ETC_NEEDED, and still runs NumPy."""
    kernel = Kernel(template, kernel_name)
    try:
        seen = ast.literal_eval(kernel.run("import os, numpy\nprint(repr((sorted(os.listdir('/etc')), "
                                           "os.path.exists('/etc/shadow'), float(numpy.ones((50, 50)).dot(numpy.ones(50)).sum()))))"))
    finally:
        kernel.shutdown()
    names, shadow, total = seen
    assert set(names) <= set(ETC_NEEDED) and not shadow, f"expected only {ETC_NEEDED} in /etc, got {names}"
    assert "ld.so.cache" in names and total == 2500.0, f"expected the linker's cache and NumPy working, got {seen}"


#: Run in a kernel: the environment of every process it can see, as one text.
SEEN_ENVIRONMENTS = """import os
seen = []
for pid in [p for p in os.listdir('/proc') if p.isdigit()]:
    try:
        seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))
    except OSError:
        pass
print(repr(seen))
"""


@pytest.mark.parametrize("kernel_name", [WARM_KERNEL_NAME, KERNEL_NAME])
def test_no_process_a_kernel_sees_holds_the_workers_environment(template, kernel_name, monkeypatch):
    """bwrap, PID 1 of a fresh kernel's sandbox, kept the worker's environment, which the kernel
    could read in /proc/1/environ: an instructor's token there reached a student's feedback."""
    monkeypatch.setenv("PA2_TEST_TOKEN", "token-of-the-instructors-shell")
    kernel = Kernel(template, kernel_name)
    try:
        seen = kernel.run(SEEN_ENVIRONMENTS)
    finally:
        kernel.shutdown()
    assert "PATH=" in seen, f"expected to read the kernel's own environment, got {seen[:300]}"
    assert "token-of-the-instructors-shell" not in seen, f"expected no worker's variable, got {seen[:2000]}"


def correct_submission(tmp_path):
    """A course copy's bundle, and the correct example submission as a task without feedback."""
    root = copy_course(tmp_path / "course")
    course = course_bundle(root, template_gradebook(root, tmp_path / "cache"))
    folder = SUBMITTED_DIR / "correct_alternative"
    files = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    return course, Task("correct_alternative", files, feedback=False)


def test_killing_the_template_mid_grading_loses_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("KERNELS", "warm")
    course, task = correct_submission(tmp_path)
    from assignment import warm_kernels as module
    warm = WarmKernels()
    monkeypatch.setitem(module._WARM, "warm", warm)
    first = warm.template_for_next_submission()
    assert first is not None, warm.problem

    def kill_when_a_kernel_runs():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if list(Path(first.folder).glob(f"pa2-grade-*/course/autograded/*/{ASSIGNMENT}")):
                time.sleep(1)
                first.process.kill()
                return
            time.sleep(0.05)
    killer = threading.Thread(target=kill_when_a_kernel_runs)
    killer.start()
    try:
        graded = grade_submission(task, course)
        killer.join()
        assert not first.alive()
        assert graded.problem == "" and graded.notebook, graded.problem
        assert graded.kernels.startswith("fresh (the template kernel died")
        assert not any("graded again without cell" in note for note in graded.notes)
        again = grade_submission(task, course)  # the next submission: a new template, warm again
        assert again.kernels == "warm" and again.problem == ""
        assert json.loads(again.notebook)["cells"] and _scores(again.notebook) == _scores(graded.notebook)
    finally:
        warm.stop()


def _scores(notebook):
    return {c["metadata"]["nbgrader"]["grade_id"]: [o.get("ename") for o in c.get("outputs", [])]
            for c in json.loads(notebook)["cells"] if c["metadata"].get("nbgrader", {}).get("grade")}


def test_without_namespaces_for_a_template_the_submission_is_graded_fresh_and_says_why(monkeypatch, tmp_path):
    """Where bubblewrap cannot make the template's namespaces, the worker grades with fresh kernels,
    the same outcomes, and says why (make grade prints it once)."""
    monkeypatch.setenv("KERNELS", "warm")
    from assignment import warm_kernels as module
    monkeypatch.setattr(module, "bwrap_works", lambda: False)
    monkeypatch.setitem(module._WARM, "warm", WarmKernels())
    course, task = correct_submission(tmp_path)
    graded = grade_submission(task, course)
    assert graded.problem == "" and graded.notebook, graded.problem
    assert graded.kernels == "fresh (bubblewrap cannot make namespaces here)", graded.kernels
    assert all(error is None for errors in _scores(graded.notebook).values() for error in errors)


def test_warm_kernels_that_die_where_fresh_ones_live_are_given_up(monkeypatch, tmp_path):
    """A machine where a forked kernel cannot run (here: a template whose kernels exit at once)
    grades with fresh kernels, the same results, and says why; the student is not blamed."""
    from assignment import warm_kernels as module
    broken = tmp_path / "template_kernel.py"
    source = module.TEMPLATE_SCRIPT.read_text()
    assert "        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)\n" in source
    broken.write_text(source.replace("        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)\n", "        os._exit(3)\n", 1))
    monkeypatch.setattr(module, "TEMPLATE_SCRIPT", broken)
    monkeypatch.setenv("KERNELS", "warm")
    warm = WarmKernels()
    monkeypatch.setitem(module._WARM, "warm", warm)
    course, task = correct_submission(tmp_path)
    try:
        graded = grade_submission(task, course)
        assert graded.problem == "" and graded.notebook, graded.problem
        assert graded.kernels.startswith("fresh (a warm kernel died where a fresh one did not"), graded.kernels
        assert all(error is None for errors in _scores(graded.notebook).values() for error in errors)
        assert warm.template_for_next_submission() is None  # given up on this worker
    finally:
        warm.stop()


#: A correct rand_init that ends its kernel when that kernel is a warm one (PID 1 is the template's supervisor).
RAND_INIT_DIES_WHEN_WARM = '''import os


def rand_init(X, k):
    if b"template_kernel" in open("/proc/1/cmdline", "rb").read():
        os._exit(3)
    return np.asarray(X)[np.random.choice(len(X), k, replace=False)]
'''


def test_a_submission_that_dies_only_in_warm_kernels_is_graded_fresh_and_the_worker_keeps_them(monkeypatch, tmp_path):
    """A student can make their code die in warm kernels alone. Their submission is graded with a
    fresh kernel, and keeps its points; but a kernel with no student code in it still works, so
    the worker keeps warm kernels for the next student (before, one such submission made its
    worker grade every later one with fresh kernels)."""
    from assignment import warm_kernels as module
    monkeypatch.setenv("KERNELS", "warm")
    warm = WarmKernels()
    monkeypatch.setitem(module._WARM, "warm", warm)
    course, task = correct_submission(tmp_path)
    notebook = nbformat.writes(good_notebook(rand_init=RAND_INIT_DIES_WHEN_WARM)).encode()
    hostile = Task("dies_when_warm", {**task.files, f"{ASSIGNMENT}/{NOTEBOOK}": notebook}, feedback=False)
    try:
        graded = grade_submission(hostile, course)
        assert graded.problem == "" and graded.kernels.startswith("fresh (a warm kernel died where a fresh one did not"), \
            (graded.problem, graded.kernels)
        assert all(error is None for errors in _scores(graded.notebook).values() for error in errors)
        assert warm.problem == "" and warm.template_for_next_submission() is not None, \
            f"expected warm kernels kept for the next submission, got {warm.problem!r}"
    finally:
        warm.stop()


def test_a_template_started_with_the_worker_is_the_one_its_first_submission_gets(monkeypatch):
    """start_template (run when a worker starts, and when a grading run begins) starts the template without waiting; the first submission waits for that one; KERNELS=fresh starts none."""
    from assignment import warm_kernels as module
    from assignment.warm_kernels import start_template
    warm = WarmKernels()
    monkeypatch.setitem(module._WARM, "warm", warm)
    try:
        monkeypatch.setenv("KERNELS", "fresh")
        start_template()
        assert warm.template is None, "expected no template with KERNELS=fresh"
        monkeypatch.setenv("KERNELS", "warm")
        started = time.monotonic()
        start_template()
        early = warm.template
        assert early is not None and early._problem is None and time.monotonic() - started < 2, \
            "expected the template started, not waited for"
        start_template()
        assert warm.template is early and warm.starts == 1, "expected one template, got a second start"
        assert warm.template_for_next_submission() is early and early.alive() and early.problem == ""
    finally:
        warm.stop()
