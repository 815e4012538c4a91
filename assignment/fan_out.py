"""Fan the submissions out over workers with Dask distributed, and take the results back.

* With no scheduler address, a local Dask cluster starts with one single-threaded worker
  process per core (``workers`` sets another number): nothing to set up.
* With ``scheduler="tcp://host:8786"`` the same tasks go to a running cluster: ``make scheduler``
  on one host and ``make worker`` on each grading machine (each in a clone of the course
  repository after ``make setup``, which installs this package in its venv, so that the
  scheduler and the workers can unpickle the tasks). Nothing is shared but the messages: each
  worker receives the course files once (a task whose result the scheduler can make again on
  another worker) and each submission's files with its task, and sends back a :class:`Graded`
  result.
* A worker that dies mid-grading (killed, out of memory) loses nothing: the scheduler runs its
  tasks again elsewhere. A submission that kills ``allowed_failures + 1`` workers in a row ends
  ``failed`` with that reason, and the others go on.
* Results are handed to ``on_result`` one by one, in the coordinator, as they finish: only
  this process writes to the gradebook, so every result lands exactly once.
* Before anything is sent, the cluster is checked (:func:`check_cluster`): the scheduler and
  every worker must import this grader, with the same files as the coordinator. A machine that
  cannot stops the run with one :class:`ClusterProblem` naming it and saying what to run there,
  rather than a ``failed`` result for every student.
"""
import argparse
import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

import dask
from distributed import Client, LocalCluster, as_completed
from distributed.comm import get_address_host, get_address_host_port
from distributed.scheduler import KilledWorker
from tqdm import tqdm

from . import cpu_groups, worker_folders
from .grade_one import Graded, grade_submission
from .warm_kernels import start_template

#: Workers a submission may kill before it is given up as ``failed`` (``make scheduler`` gives a
#: cluster's scheduler the same number).
ALLOWED_FAILURES = 2
#: The scheduler's settings for grading (``make scheduler`` passes the same). Dask counts a worker's
#: death against every task assigned to it, the ones waiting there too; with a saturation of 1.0 a
#: single-threaded worker holds only the task it runs, so a submission that keeps killing its
#: workers never takes an innocent one queued behind it down with it.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
                    "distributed.scheduler.worker-saturation": 1.0}
#: Seconds to wait for a first worker to join a cluster that has none yet.
WORKER_WAIT = 30
#: Memory a local worker may use before its nanny restarts it (a notebook flooding its output
#: grows the worker that collects it); Dask's "auto" shares the machine's memory among workers.
WORKER_MEMORY = os.environ.get("PA2_WORKER_MEMORY", "auto")
#: Dask's own housekeeping in a local cluster, set as Dask's own cluster tests set it. By default
#: each worker samples its running task's stack every 10 ms for the dashboard's profile (which
#: grading never opens), and every process checks its event loop every 20 ms and its memory every
#: 100 ms: 0.05 to 0.1 of a core while workers wait on kernels. Memory is still checked twice a
#: second, and each kernel has its own memory cap.
LOCAL_HOUSEKEEPING = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "500ms",
                      "distributed.admin.system-monitor.interval": "2s",
                      "distributed.worker.memory.monitor-interval": "500ms"}


def default_workers():
    """One worker per core: each grades one notebook at a time, whose kernel uses one core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


#: The grader's own files: the `assignment` package of the clone this process imported it from.
PACKAGE = Path(__file__).resolve().parent


def code_version(package=PACKAGE):
    """A short hash of the grader's files (every ``.py`` of the package): machines grade alike
    only when theirs are the same."""
    digest = hashlib.sha256()
    for path in sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


#: The version of the grader this process imported (computed once, when it was imported: a
#: worker started before its clone was updated still runs the code it loaded).
CODE_VERSION = code_version()


def describe():
    """Which grader this machine runs: what :func:`check_cluster` asks each machine."""
    return {"version": CODE_VERSION, "package": str(PACKAGE)}


#: What the scheduler and each worker evaluate for :func:`check_cluster`. A string for the
#: built-in ``eval``, not a function of this package: a machine that cannot import the grader can
#: still run it, and the import error comes back as the answer.
PROBE = "__import__('assignment.fan_out', fromlist=['describe']).describe()"


class ClusterProblem(RuntimeError):
    """A machine of the grading cluster cannot grade: the run stops before anything is sent."""


def course_commit():
    """``(commit, dirty)`` of the clone holding the grader, or ``(None, False)`` outside git."""
    try:
        def git(*args):
            return subprocess.run(["git", "-C", str(PACKAGE.parent), *args], capture_output=True, text=True,
                                  timeout=10, check=True).stdout.strip()
        return git("rev-parse", "--short", "HEAD"), bool(git("status", "--porcelain", "--", str(PACKAGE)))
    except (OSError, subprocess.SubprocessError):
        return None, False


def _what_is_wrong(answer, here):
    """Why a machine that answered ``answer`` to :data:`PROBE` cannot grade (``None`` when it can)."""
    if isinstance(answer, ImportError):
        return f"cannot import the grader ({type(answer).__name__}: {answer})"
    if isinstance(answer, BaseException):
        return f"could not load the grader ({type(answer).__name__}: {answer})"
    if not isinstance(answer, dict) or answer.get("version") != here["version"]:
        theirs = answer.get("version") if isinstance(answer, dict) else answer
        where = f" in {answer['package']}" if isinstance(answer, dict) and answer.get("package") else ""
        return f"runs other grader files (assignment/ version {theirs}{where}; the coordinator's is {here['version']})"
    return None


def cluster_problems(scheduler, on_scheduler, on_workers, names=None, here=None, commit=(None, False)):
    """The entries of the message that stops a run: one per machine that cannot grade, saying
    what is wrong and what to run there. Empty when every machine can grade.

    ``scheduler`` is its address; ``on_scheduler`` and ``on_workers`` (worker address -> answer)
    what they answered to :data:`PROBE` (a dict, or the exception raised); ``names`` the workers'
    names; ``here`` the coordinator's :func:`describe`; ``commit`` :func:`course_commit`'s answer.
    """
    here = here or describe()
    names = names or {}
    sha, dirty = commit
    if sha and dirty:
        update = f"`git checkout {sha}`, bring the coordinator's uncommitted changes to assignment/, `make setup`"
    elif sha:
        update = f"`git checkout {sha}`, `make setup`"
    else:
        update = f"put the coordinator's assignment/ (version {here['version']}) in place, `make setup`"
    problems = []
    wrong = _what_is_wrong(on_scheduler, here)
    if wrong:
        host, port = get_address_host_port(scheduler)
        problems.append(f"the scheduler {scheduler} {wrong}.\n"
                        f"  On {host}: stop it; in its clone of this repository: {update}; "
                        f"then start it again: `make scheduler HOST={host} PORT={port}`.")
    by_host = {}
    for address, answer in sorted(on_workers.items()):
        wrong = _what_is_wrong(answer, here)
        if wrong:
            name = names.get(address)
            label = address if name in (None, "", address) else f"{name} ({address})"
            by_host.setdefault((get_address_host(address), wrong), []).append(label)
    for (host, wrong), labels in sorted(by_host.items()):
        workers = f"the worker {labels[0]}" if len(labels) == 1 else f"{len(labels)} workers ({', '.join(labels)})"
        problems.append(f"{workers} on {host} {wrong}.\n"
                        f"  On {host}: stop its workers; in its clone of this repository: {update}; "
                        f"then start them again: `make worker SCHEDULER={scheduler}`.")
    return problems


def check_cluster(client, scheduler, wait=WORKER_WAIT):
    """Raise :class:`ClusterProblem` unless the scheduler and every worker import this grader
    with the same files as this process, and there is at least one worker (waiting ``wait`` s)."""
    try:
        on_scheduler = client.run_on_scheduler(eval, PROBE, {})
    except Exception as error:  # the scheduler's answer: it cannot import the grader
        on_scheduler = error
    if not isinstance(on_scheduler, BaseException) and not client.scheduler_info()["workers"]:
        try:
            client.wait_for_workers(1, timeout=wait)
        except (TimeoutError, OSError):
            raise ClusterProblem(f"no worker has joined the scheduler {scheduler} in {wait} s; nothing was graded.\n"
                                 f"  On each grading machine, in its clone of this repository, run "
                                 f"`make setup`, then `make worker SCHEDULER={scheduler}`.") from None
    on_workers = client.run(eval, PROBE, {}, on_error="return")
    names = {address: info.get("name") for address, info in client.scheduler_info()["workers"].items()}
    problems = cluster_problems(scheduler, on_scheduler, on_workers, names, commit=course_commit())
    if problems:
        raise ClusterProblem(f"the grading cluster at {scheduler} cannot grade with this grader; nothing was sent "
                             "to it and nothing written.\n" + "\n".join(f"- {p}" for p in problems))


@contextmanager
def checked_client(scheduler=None, workers=None):
    """A :func:`dask_client` whose cluster :func:`check_cluster` has found able to grade."""
    with ExitStack() as stack:
        try:
            client = stack.enter_context(dask_client(scheduler, workers))
        except OSError as error:  # no scheduler there, or not reachable from here
            if not scheduler:
                raise
            host, port = get_address_host_port(scheduler)
            raise ClusterProblem(f"cannot reach the scheduler at {scheduler} ({error}); nothing was sent or written.\n"
                                 f"  On {host}, in its clone of this repository: `make setup`, then "
                                 f"`make scheduler HOST={host} PORT={port}`; and {host}:{port} must be "
                                 "reachable from this machine.") from None
        check_cluster(client, scheduler or client.scheduler.address)
        yield client


@contextmanager
def sigint_ignored():
    """While it lasts, this process ignores SIGINT, and so does every process it starts, for good:
    an ignored signal stays ignored in a child, and Python leaves it so. Started this way, a local
    cluster's workers leave a Ctrl-C in the terminal to the coordinator alone, which then closes
    them in order (each stops its template and removes its folders) instead of their dying mid-task
    with a traceback each. Out of the main thread, where no handler can be set, it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def dask_client(scheduler=None, workers=None):
    """A Dask client: on the cluster at ``scheduler``, or on a local cluster of ``workers`` processes."""
    with dask.config.set(SCHEDULER_CONFIG):
        if scheduler:
            with Client(scheduler, timeout="30s") as client:
                yield client
            return
        with dask.config.set(LOCAL_HOUSEKEEPING):
            with sigint_ignored():  # Ctrl-C is for this process alone, which then closes the cluster in order
                cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                                       memory_limit=WORKER_MEMORY, dashboard_address=None, silence_logs=logging.ERROR,
                                       worker_dashboard_address=None, preload=["assignment.warm_kernels"])
            with cluster, Client(cluster) as client:
                try:
                    yield client
                finally:
                    client.close()
                    cluster.close()  # its workers are gone: their CPU groups and folders can go too
                    cpu_groups.remove_stale_groups()
                    worker_folders.remove_stale()  # those of a worker Dask killed when it would not stop in time


def _course_files(course):
    return course


def killed(task, error):
    """The result of a submission whose grading kept killing its worker."""
    return Graded(task.student_id, problem="grading this submission killed the worker process every time "
                                           f"it was tried ({type(error).__name__}: out of memory, or the grader's "
                                           "own work on what the kernel sent ran past its time); nothing could be scored")


def grade_many(tasks, course, on_result, scheduler=None, workers=None, progress=True, client=None):
    """Grade ``tasks`` (a list of :class:`Task`, first to grade first) with the course files
    ``course`` on Dask workers: the cluster at ``scheduler``, else ``workers`` local processes
    (default: one per core), never more than there are tasks.

    ``on_result(task, graded)`` is called in this process once for every task, as each finishes.
    ``client``: a client :func:`checked_client` gave; else one is made (and checked) here.
    """
    if not tasks:
        return
    if not scheduler:  # a worker more than the submissions would only import and start a template for nothing
        workers = min(workers or default_workers(), len(tasks))
    with nullcontext(client) if client is not None else checked_client(scheduler, workers) as client:
        # each worker's template imports while the first tasks are sent (a worker that cannot: at its first task)
        client.run(start_template, on_error="ignore")
        # A task that returns the course files, rather than scattered data: if the worker
        # holding them dies, the scheduler makes them again instead of forgetting them.
        shared = client.submit(_course_files, course, key=f"course-{course.digest}", pure=False)
        # in the order given: each worker takes the highest priority it holds (Dask's default is
        # roughly the order of submission, not exactly)
        futures = {client.submit(grade_submission, task, shared, key=f"grade-{task.student_id}", pure=False,
                                 priority=len(tasks) - index): task for index, task in enumerate(tasks)}
        bar = tqdm(total=len(tasks), desc="grading", unit="submission", disable=not progress,
                   smoothing=0.1, dynamic_ncols=True)
        with bar:
            for future in as_completed(futures):
                task = futures[future]
                try:
                    graded = future.result()
                except KilledWorker as error:
                    graded = killed(task, error)
                except Exception as error:  # a bug in the grader itself, for this submission only
                    graded = Graded(task.student_id, problem=f"grading failed: {type(error).__name__}: {error}"[:300])
                on_result(task, graded)
                future.release()
                bar.update()


def main(argv=None):
    """``python -m assignment.fan_out tcp://host:8786`` (``make check-cluster``): check the cluster
    at that address; print what it runs, or the machines that cannot grade (exit status 2)."""
    parser = argparse.ArgumentParser(description="Check that every machine of a grading cluster runs this grader.")
    parser.add_argument("scheduler", help="the scheduler's address, e.g. tcp://10.0.0.5:8786")
    args = parser.parse_args(argv)
    try:
        with checked_client(args.scheduler) as client:
            workers = client.scheduler_info()["workers"]
    except ClusterProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    hosts = sorted({get_address_host(address) for address in workers})
    print(f"the grading cluster at {args.scheduler} can grade: the scheduler and {len(workers)} workers "
          f"(on {', '.join(hosts)}) run this grader (assignment/ version {CODE_VERSION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
