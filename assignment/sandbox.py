"""Launch the grading kernel in a sandbox: ``sandbox.py <connection_file> [kernel options]`` (a kernelspec's argv).

Student code runs in this kernel while nbgrader grades it. The launcher, which nbgrader's
kernel manager starts in the notebook's folder, caps the kernel's memory and, where
bubblewrap (``bwrap``) works, starts it in a fresh mount, network, PID and IPC namespace that
holds only:

* the operating system and Python (``/usr``, the parts of ``/etc`` they read, the interpreter and
  the venv), read-only;
* the notebook's folder, as an empty in-memory folder with the assignment's data files
  (read-only), and without the notebook itself, which at that moment holds the hidden tests;
* the kernel's runtime folder (connection file and IPC sockets: the kernel talks to nbgrader
  over Unix sockets, since it has no network, not even loopback);
* an in-memory ``/tmp`` as home.

It runs with no capability and cannot make a user namespace (:data:`CONFINE`), so it cannot
mount anything or leave its worker's CPU group (``assignment.cpu_groups``). So student code
finds neither the source notebook, the hidden tests nor the gradebook, opens no network
connection, and whatever it writes vanishes with the sandbox. Without bwrap the kernel
runs unsandboxed (memory cap only) and ``PA2_SANDBOX`` tells the grader so.

This file is run as a script, so it imports only the standard library.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import sysconfig

#: Address-space cap for the kernel (bytes): well below the machine's memory, far above the
#: few hundred MB the assignment needs. Override with PA2_KERNEL_MEMORY_MB.
DEFAULT_MEMORY_MB = 3072
#: Size of each in-memory folder a kernel may write in (its ``/tmp``, the notebook's folder, and a
#: warm kernel's ``/dev/shm``), in MB. What is written there is memory that the address-space cap
#: does not count: without a size, each holds half of the machine's memory.
TMPFS_MB = 256
#: Environment variables that may hold database credentials; removed before the kernel starts
#: (the bubblewrap sandbox clears the whole environment anyway).
CREDENTIALS = ("PA2_DB_URL", "DATABASE_URL", "PGPASSWORD", "PGPASSFILE", "PGSERVICEFILE")


#: Set by the grading worker before it starts a kernel: its process id, the parent a kernel's
#: launcher must still have once it has asked to die with it (:func:`die_with_grader`).
GRADER_PID = "PA2_GRADER_PID"
PR_SET_PDEATHSIG = 1


def die_with_grader():
    """End this process, and the kernel it becomes, when the grading worker that started it dies;
    at once if it is already gone. A worker killed in the tens of milliseconds a Python start
    takes leaves its launcher with another parent: reading the parent only then (and bwrap's own
    ``--die-with-parent``, which does) would keep the kernel running for ever, so the worker
    names itself in :data:`GRADER_PID` before it starts the launcher."""
    import ctypes
    parent = int(os.environ.get(GRADER_PID) or os.getppid())
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the grader died before the line above
        os._exit(1)


#: Folders that hold other people's files: never bound into the sandbox.
SHARED_FOLDERS = {"/", "/tmp", "/var/tmp", "/dev/shm", os.path.expanduser("~")}


#: bwrap options that leave a fresh kernel no way to make namespaces of its own: no capability,
#: and no user namespace (in one it would hold every capability again). Run as root without
#: them, bwrap leaves the kernel every capability in its namespaces: it could mount the cgroup
#: file system and change the CPU share of every worker, say. bubblewrap 0.8 and later. (A
#: warm kernel drops every capability itself, and its chroot keeps it from making a user
#: namespace.)
CONFINE = ("--unshare-user", "--disable-userns", "--cap-drop", "ALL")


def confining_options(options=CONFINE):
    """``options`` where this bubblewrap has them (bubblewrap 0.8 and later), else none."""
    probe = subprocess.run(["bwrap", *options, "--ro-bind", "/", "/", "--unshare-all", "--dev", "/dev", "true"],
                           capture_output=True)
    return list(options) if probe.returncode == 0 else []


def bwrap_works():
    """Whether bubblewrap is installed and may create namespaces on this machine."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        return False
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--unshare-all", "--dev", "/dev", "true"],
                           capture_output=True)
    return probe.returncode == 0


def python_roots():
    """Folders the interpreter needs: the base installation and the venv."""
    paths = sysconfig.get_paths()
    roots = {sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))}
    roots.update(paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib"))
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


#: What a kernel sees of ``/etc``: what the dynamic linker, the C library and Python read, and no
#: more. Bound whole, ``/etc`` showed a kernel run as root ``/etc/shadow`` and every secret kept there.
ETC_NEEDED = ("alternatives", "fonts", "group", "host.conf", "hosts", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
              "locale.alias", "localtime", "mime.types", "nsswitch.conf", "passwd")


def system_binds():
    """bwrap arguments for what every sandbox holds: the system and Python read-only (of ``/etc``,
    :data:`ETC_NEEDED` only), a new ``/proc`` and ``/dev``, an in-memory ``/tmp``."""
    command = ["--ro-bind", "/usr", "/usr"]
    for name in ETC_NEEDED:
        command += ["--ro-bind-try", os.path.join("/etc", name), os.path.join("/etc", name)]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = os.path.join("/", link)
        if os.path.islink(target):
            command += ["--symlink", os.readlink(target), target]
        elif os.path.isdir(target):
            command += ["--ro-bind", target, target]
    command += ["--proc", "/proc", "--dev", "/dev", *capped_tmpfs("/tmp")]
    for root in python_roots():
        command += ["--ro-bind", root, root]
    return command


def capped_tmpfs(path):
    """bwrap arguments for an in-memory folder at ``path`` of :data:`TMPFS_MB`."""
    return ["--size", str(TMPFS_MB * 1024 * 1024), "--tmpfs", path]


def kernel_environment():
    """The whole environment of a sandboxed kernel (bwrap clears the rest)."""
    environment = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib", "IPYTHONDIR": "/tmp/ipython",
                   "PATH": os.path.dirname(sys.executable) + ":/usr/bin:/bin", "LANG": "C.UTF-8",
                   "PA2_SANDBOX": "bwrap", "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                   "LOKY_MAX_CPU_COUNT": str(os.cpu_count() or 1)}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if key in os.environ:
            environment[key] = os.environ[key]
    return environment


def setenv_arguments(environment):
    return [argument for key, value in environment.items() for argument in ("--setenv", key, value)]


def bwrap_command(connection_file, socket_prefix, workdir, kernel_argv):
    """The bwrap command line that runs ``kernel_argv`` in the sandbox.

    ``socket_prefix`` is the absolute path prefix of the kernel's IPC sockets (the ``ip`` of
    the connection file); its folder, which must be the kernel's own, is the only writable bind.
    The connection file is bound alone, read-only: the grader keeps it outside that folder
    (``grade_one.socket_folder``), since jupyter_client opens it again at each restart, and a
    kernel that could swap it for a FIFO would block the grader.
    """
    socket_dir = os.path.dirname(socket_prefix)
    if socket_dir in SHARED_FOLDERS:
        sys.exit(f"the kernel's socket folder {socket_dir} must be a folder of its own, not a shared one")
    confining = confining_options()
    command = ["bwrap", "--die-with-parent", "--unshare-all", *confining, "--clearenv", *system_binds()]
    command += capped_tmpfs(workdir)
    for name in sorted(os.listdir(workdir)):
        path = os.path.join(workdir, name)
        if os.path.isfile(path) and not name.endswith(".ipynb"):
            command += ["--ro-bind", path, path]
    # the connection file alone (its folder may be shared), and the kernel's own socket folder
    command += ["--bind", socket_dir, socket_dir]
    connection_file = os.path.abspath(connection_file)
    if os.path.dirname(connection_file) != socket_dir:
        command += ["--ro-bind", connection_file, connection_file]
    if confining:  # its own user namespace leaves bwrap's root and /dev writable: read-only, as without it
        command += ["--remount-ro", "/", "--remount-ro", "/dev"]
    command += ["--chdir", workdir, *setenv_arguments(kernel_environment())]
    return command + ["--", *kernel_argv]


def cap_memory():
    limit = int(os.environ.get("PA2_KERNEL_MEMORY_MB", DEFAULT_MEMORY_MB)) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: sandbox.py <connection_file> [kernel options]")
    die_with_grader()  # kept across the exec below: bwrap, or the kernel itself without bwrap
    connection_file = os.path.abspath(argv[1])
    with open(connection_file) as handle:
        connection = json.load(handle)
    kernel_argv = [sys.executable, "-m", "ipykernel_launcher", "-f", connection_file, *argv[2:]]
    cap_memory()
    for key in CREDENTIALS:  # student code never sees the gradebook's address or a password
        os.environ.pop(key, None)
    if os.environ.get("PA2_SANDBOX", "bwrap") == "bwrap" and bwrap_works():
        if connection.get("transport") != "ipc" or not os.path.isabs(connection.get("ip", "")):
            sys.exit("the sandboxed kernel has no network: it needs KernelManager.transport = 'ipc' "
                     "and an absolute KernelManager.ip (a socket path prefix)")
        command = bwrap_command(connection_file, connection["ip"], os.getcwd(), kernel_argv)
        command[0] = shutil.which(command[0])
        # bwrap is PID 1 of the sandbox, where the kernel reads its /proc/1/environ: it gets the
        # kernel's environment, never the worker's (whatever secrets an instructor's shell holds)
        environment = kernel_environment()
    else:
        os.environ["PA2_SANDBOX"] = "none"
        command, environment = kernel_argv, dict(os.environ)
    # The kernel's own banner and logs are not the grader's output (the notebook gets the
    # cells' output over the kernel protocol).
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.execvpe(command[0], command, environment)


if __name__ == "__main__":
    main(sys.argv)
