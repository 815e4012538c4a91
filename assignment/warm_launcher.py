"""Start a warm grading kernel: ``warm_launcher.py <connection_file> [kernel options]`` (the warm kernelspec's argv).

nbgrader's kernel manager starts this process, in the notebook's folder, as it would start a
kernel. It asks the worker's template (``assignment.template_kernel``, at the Unix socket named by
``PA2_WARM_TEMPLATE``) to fork a kernel for this connection file, then waits: it exits with the
kernel's exit status when the kernel exits, and when the kernel manager kills it (a restart, a
shutdown, a stuck kernel) the template's supervisor sees the connection close and ends the kernel
and everything it started. Interrupts come as messages (the kernelspec's ``interrupt_mode``).

When there is no template, or it does not answer, the kernel starts fresh through
``assignment/sandbox.py`` instead, exactly as without warm kernels.

This file is run as a script, so it imports only the standard library and `sandbox.py` beside it
(which imports only the standard library too).
"""
import json
import os
import signal
import socket
import sys

from sandbox import DEFAULT_MEMORY_MB, TMPFS_MB, die_with_grader  # run as a script: its folder is first on sys.path

SANDBOX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox.py")
#: Seconds to wait for the template's answer before starting a fresh kernel instead.
ANSWER_TIMEOUT = 20


def kernel_request(connection_file, options=()):
    """What the template needs to fork this kernel with ipykernel's ``options``, or None when it
    cannot (then: fresh)."""
    with open(connection_file) as handle:
        connection = json.load(handle)
    runtime_dir = os.path.dirname(str(connection.get("ip", "")))  # the sockets' folder: the kernel's to write in
    if connection.get("transport") != "ipc" or not os.path.isabs(runtime_dir):
        return None
    return {"connection_file": connection_file, "runtime_dir": runtime_dir, "workdir": os.getcwd(),
            "memory_mb": int(os.environ.get("PA2_KERNEL_MEMORY_MB", DEFAULT_MEMORY_MB)), "tmpfs_mb": TMPFS_MB,
            "options": list(options)}


def ask_template(address, request):
    """Connect to the template and have it fork the kernel; the connection, or None."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.settimeout(ANSWER_TIMEOUT)
        client.connect(address)
        client.sendall((json.dumps(request) + "\n").encode())
        answer = json.loads(client.makefile().readline() or "{}")
    except (OSError, ValueError):
        client.close()
        return None
    if not answer.get("started"):
        client.close()
        return None
    client.settimeout(None)
    return client


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: warm_launcher.py <connection_file> [kernel options]")
    die_with_grader()  # the worker's death ends this launcher, and so its kernel, as it ends a fresh one
    connection_file = os.path.abspath(argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts go to the kernel as messages
    address = os.environ.get("PA2_WARM_TEMPLATE")
    request = kernel_request(connection_file, argv[2:])
    client = ask_template(address, request) if address and request else None
    if client is None:  # no template: a fresh kernel, as without warm kernels
        os.execv(sys.executable, [sys.executable, SANDBOX, connection_file, *argv[2:]])
    answer = client.makefile().readline()  # the kernel's exit, or nothing when the template died
    try:
        code = int(json.loads(answer)["exit"])
    except (ValueError, KeyError, TypeError):
        code = 1
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main(sys.argv)
