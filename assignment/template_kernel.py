"""The warm template kernel: ``template_kernel.py <socket> <host_folder> <view_folder>``, run in bubblewrap.

One template runs per grading worker, started by ``assignment.warm_kernels`` inside a bubblewrap
sandbox like the fresh kernel's (``assignment.sandbox``: its own user, network, IPC, UTS and PID
namespaces, the system and Python read-only, no environment but the kernel's), with two
differences: it keeps ``CAP_SYS_ADMIN`` and ``CAP_SETPCAP`` *inside its own user namespace* (which
gives nothing outside it), and it sees the worker's grading folder ``host_folder`` at
``view_folder``. It imports what every kernel imports (NumPy, SciPy, Matplotlib, scikit-learn,
IPython, ipykernel), then serves requests on the Unix socket ``socket``; it runs no student code,
reads no notebook, holds no credentials and starts no thread, kernel app or ZeroMQ socket. What the
imports made is frozen out of the garbage collector's sight (``gc.freeze``): every kernel inherits
it, so a kernel's full collections walk only what the notebook made, as Instagram's pre-fork
servers do, and its memory pages stay shared with the template instead of being copied.

A request (one JSON line from the launcher, ``assignment.warm_kernels``) names a connection file, the
notebook's folder and the memory cap. For each the template forks, and the fork:

1. ``unshare``\\ s a new mount, PID, IPC, network and UTS namespace, and forks again so that its
   child is PID 1 of the new PID namespace: the *supervisor*;
2. the supervisor builds the kernel's file system: a fresh in-memory ``/tmp`` (the home) and
   ``/dev/shm``, the notebook's folder as an empty in-memory folder with the assignment's data
   files bound read-only (not the notebook), the folder of the kernel's IPC sockets bound writable
   and its connection file read-only, a new ``/proc`` for the new PID namespace (with ``/proc/sys`` and the
   like read-only, as bubblewrap leaves them); it unmounts the grading folder's view, and makes
   ``/`` and ``/dev`` read-only;
3. it forks the kernel (PID 2), which drops every capability (effective, permitted, inheritable,
   ambient and bounding), sets ``no_new_privs``, caps its address space, takes the fresh kernel's
   environment, working folder and ``sys.path``, re-seeds NumPy's global generator and ``random``
   from the OS, sets the BLAS thread pools to what a fresh kernel would start, and runs ipykernel's
   ``IPKernelApp`` with the connection file;
4. the supervisor waits: when the kernel exits it tells the launcher the exit status and exits;
   when the launcher goes away (the kernel manager killed it) it exits at once. Either way, as
   PID 1 its exit kills every process left in the namespace.

Nothing a kernel does reaches the template or the next kernel: memory is copied on write, every
writable place is the kernel's own and in memory, its processes die with its PID namespace.

This file is run as a script in the sandbox, so it imports only the standard library until the
template imports the scientific stack.
"""
import ctypes
import gc
import json
import os
import re
import resource
import select
import signal
import socket
import sys

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
#: Parts of /proc that bubblewrap leaves read-only; the kernel's own /proc does too.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus")
#: Modules every grading kernel imports: the template imports them once for all its kernels.
#: The last line: what ipykernel imports when it starts (its debugger, 50 ms) and IPython when a
#: cell first raises (its traceback formatting).
PRELOADED = ("numpy", "scipy.spatial.distance", "matplotlib", "matplotlib.pyplot", "matplotlib.figure",
             "matplotlib.colors", "matplotlib_inline.backend_inline", "sklearn.datasets", "sklearn.decomposition",
             "sklearn.preprocessing", "IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "threadpoolctl",
             "ipykernel.debugger", "stack_data", "pygments.lexers.python", "pygments.formatters.terminal256")
#: Set in the template only (never in a kernel): OpenBLAS must start no threads before the fork.
TEMPLATE_ONLY = {"OPENBLAS_NUM_THREADS": "1"}

#: This script, bound alone into the template's sandbox: not for the kernels.
SCRIPT = os.path.abspath(__file__)

libc = ctypes.CDLL(None, use_errno=True)


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source, target, fstype, flags, data=None):
    """``mount(2)``; raises OSError on failure."""
    _check(libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), ctypes.c_ulong(flags),
                      data and data.encode()), f"mount {source} on {target}")


def unshare(flags):
    _check(libc.unshare(flags), "unshare")


def prctl(option, arg2=0):
    _check(libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)),
           f"prctl {option}")


def fresh_blas_threads(environ):
    """The BLAS threads a fresh kernel with ``environ`` starts: OpenBLAS reads OPENBLAS_NUM_THREADS,
    then GOTO_NUM_THREADS, then OMP_NUM_THREADS, else uses every core it may run on."""
    for key in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            if int(environ.get(key, "")) > 0:
                return int(environ[key])
        except ValueError:
            pass
    return len(os.sched_getaffinity(0))


def mounts_below(folder):
    """The mount points strictly below ``folder`` in this mount namespace, parents first."""
    points = set()
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = re.sub(r"\\([0-7]{3})", lambda octal: chr(int(octal.group(1), 8)), line.split()[4])
            if point.startswith(folder.rstrip("/") + "/"):
                points.add(point)
    return sorted(points, key=lambda point: (point.count("/"), point))


def drop_capabilities():
    """Drop every capability (bounding and ambient sets too) and set ``no_new_privs``."""
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, ctypes.c_ulong(cap), 0, 0, 0)  # needs CAP_SETPCAP, held until here
    libc.prctl(PR_CAP_AMBIENT, ctypes.c_ulong(PR_CAP_AMBIENT_CLEAR_ALL), 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: all zero, twice (64 bits)
    _check(libc.capset(header, data), "capset")
    prctl(PR_SET_NO_NEW_PRIVS, 1)


class Template:
    """The template's state: where the grading folder is seen, and the fresh kernel's environment."""

    def __init__(self, host_folder, view_folder):
        self.host_folder, self.view_folder = host_folder.rstrip("/"), view_folder.rstrip("/")
        self.environment = dict(os.environ)  # exactly the fresh kernel's (assignment.sandbox)
        self.blas_threads = fresh_blas_threads(self.environment)

    def warm_up(self):
        """Import the scientific stack and the kernel's modules, with no BLAS threads started."""
        fresh = dict(os.environ)
        os.environ.update(TEMPLATE_ONLY)
        import importlib
        for name in PRELOADED:
            importlib.import_module(name)
        threads = len(os.listdir("/proc/self/task"))
        if threads != 1:
            raise RuntimeError(f"the template runs {threads} threads after its imports; it may not fork")
        # What the imports made lives as long as the kernel: out of the collector's sight, a kernel's
        # full collections skip it (80 ms each, a few per notebook) and leave its pages shared.
        gc.collect()
        gc.freeze()
        # a kernel's environment: the fresh kernel's, with what the imports set (scikit-learn sets KMP_*)
        self.environment = dict(os.environ)
        for key in TEMPLATE_ONLY:
            if key in fresh:
                self.environment[key] = fresh[key]
            else:
                del self.environment[key]

    def view(self, host_path):
        """Where the template sees ``host_path``, a path inside the grading folder (else ValueError)."""
        real = os.path.normpath(host_path)
        if not real.startswith(self.host_folder + "/"):
            raise ValueError(f"{host_path} is not inside the grading folder {self.host_folder}")
        return self.view_folder + real[len(self.host_folder):]

    def serve(self, socket_path):
        """Accept launchers on ``socket_path`` for ever; fork one kernel per request."""
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the short-lived first forks reap themselves
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(socket_path)
        listener.listen(8)
        print("ready", flush=True)
        while True:
            ready, _, _ = select.select([listener, sys.stdin], [], [])
            if sys.stdin in ready:  # the worker closed its end of our stdin: it is gone, and so are we
                os._exit(0)
            connection, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                try:
                    self.start_kernel(connection)
                finally:
                    os._exit(70)
            connection.close()

    def start_kernel(self, connection):
        """In the template's fork: new namespaces, the supervisor as their PID 1, the kernel under it."""
        request = json.loads(connection.makefile().readline())
        unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET | CLONE_NEWUTS)
        if os.fork() != 0:
            os._exit(0)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        try:
            self.build_file_system(request)
        except Exception as error:
            connection.sendall((json.dumps({"error": f"{type(error).__name__}: {error}"}) + "\n").encode())
            os._exit(71)
        kernel = os.fork()
        if kernel == 0:
            try:
                self.become_kernel(request)
            finally:
                os._exit(72)
        supervise(connection, kernel)

    def build_file_system(self, request):
        """The kernel's mounts, made by the supervisor (PID 1 of the new PID namespace)."""
        runtime, workdir, connection = request["runtime_dir"], request["workdir"], request["connection_file"]
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        # what is bound from the grading folder is opened while it is still in view
        runtime_fd = os.open(self.view(runtime), os.O_PATH | os.O_DIRECTORY)
        connection_fd = os.open(self.view(connection), os.O_PATH | os.O_NOFOLLOW)
        data = [(os.path.join(workdir, name), os.open(os.path.join(self.view(workdir), name), os.O_PATH))
                for name in sorted(os.listdir(self.view(workdir)))
                if not name.endswith(".ipynb") and os.path.isfile(os.path.join(self.view(workdir), name))]
        # what the sandbox binds below /tmp (Python and the venv, when they live there) stays in view
        below_tmp = [(path, os.open(path, os.O_PATH)) for path in mounts_below("/tmp") if path != SCRIPT]
        tmpfs = f"mode=0755,size={int(request['tmpfs_mb'])}m"  # what is written there is memory the cap does not count
        for path in ("/tmp", "/dev/shm"):
            mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs)
        for path, fd in below_tmp:
            if os.path.isdir(f"/proc/self/fd/{fd}"):
                os.makedirs(path, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                open(path, "w").close()
            mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            os.close(fd)
        for path in (runtime, workdir, os.path.dirname(connection)):
            os.makedirs(path, exist_ok=True)
        mount(f"/proc/self/fd/{runtime_fd}", runtime, None, MS_BIND)
        if not os.path.exists(connection):  # outside the sockets' folder, as the grader keeps it: read-only
            open(connection, "w").close()
            mount(f"/proc/self/fd/{connection_fd}", connection, None, MS_BIND)
            mount(None, connection, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(connection_fd)
        mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs)
        for path, fd in data:
            open(path, "w").close()
            mount(f"/proc/self/fd/{fd}", path, None, MS_BIND)
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
            os.close(fd)
        os.close(runtime_fd)
        _check(libc.umount2(self.view_folder.encode(), MNT_DETACH), "umount the grading folder")
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for name in PROC_READ_ONLY:
            path = os.path.join("/proc", name)
            if os.path.exists(path):
                mount(path, path, None, MS_BIND | MS_REC)
                mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        for path in ("/dev", "/"):
            mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)

    def become_kernel(self, request):
        """In the kernel process: give up every privilege, become a fresh kernel, run ipykernel."""
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, 1 << 16)
        os.chdir(request["workdir"])
        drop_capabilities()
        limit = int(request["memory_mb"]) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        os.environ.clear()
        os.environ.update(self.environment, PWD=request["workdir"])
        import random

        import numpy
        import threadpoolctl
        numpy.random.seed()
        random.seed()
        threadpoolctl.threadpool_limits(self.blas_threads, user_api="blas")
        # as `python -m ipykernel_launcher`, which takes its own folder (here: this script's) off sys.path
        import importlib.util
        del sys.path[0]
        sys.argv = [importlib.util.find_spec("ipykernel_launcher").origin, "-f", request["connection_file"],
                    *(str(option) for option in request.get("options", ()) if str(option).startswith("--"))]
        from ipykernel import kernelapp
        kernelapp.launch_new_instance()
        os._exit(0)


def supervise(connection, kernel):
    """PID 1 of the kernel's namespace: report the kernel's exit to the launcher, or end it all
    when the launcher is gone. Exiting kills every process left in the namespace."""
    prctl(PR_SET_DUMPABLE, 0)
    drop_capabilities()
    pidfd = os.pidfd_open(kernel)
    connection.sendall(b'{"started": true}\n')
    while True:
        ready, _, _ = select.select([connection, pidfd], [], [], 1.0)
        if connection in ready and not connection.recv(1):
            os._exit(0)  # the launcher is gone: the kernel and whatever it started die with us
        try:
            while True:  # the kernel, and the orphans of its own children
                pid, status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
                if pid == kernel:
                    message = {"exit": os.waitstatus_to_exitcode(status)}
                    connection.sendall((json.dumps(message) + "\n").encode())
                    os._exit(0)
        except ChildProcessError:
            os._exit(0)


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: template_kernel.py <socket> <host_folder> <view_folder>")
    template = Template(argv[2], argv[3])
    template.warm_up()
    template.serve(argv[1])


if __name__ == "__main__":
    main(sys.argv)
