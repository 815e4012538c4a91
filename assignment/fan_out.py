"""Fan the submissions out over workers with Dask distributed, and take the results back.

* With no scheduler address, a local Dask cluster starts with one single-threaded worker
  process per core (``workers`` sets another number): nothing to set up.
* With ``scheduler="tcp://host:8786"`` the same tasks go to a running cluster: ``dask scheduler``
  on one host and ``dask worker`` on each grading machine (which has the course repository and
  its environment). Nothing is shared but the messages: each worker receives the course files
  once (a task whose result the scheduler can make again on another worker) and each
  submission's files with its task, and sends back a :class:`Graded` result.
* A worker that dies mid-grading (killed, out of memory) loses nothing: the scheduler runs its
  tasks again elsewhere. A submission that kills ``allowed_failures + 1`` workers in a row ends
  ``failed`` with that reason, and the others go on.
* Results are handed to ``on_result`` one by one, in the coordinator, as they finish: only
  this process writes to the gradebook, so every result lands exactly once.
"""
import logging
import os
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster, as_completed
from distributed.scheduler import KilledWorker
from tqdm import tqdm

from .grade_one import Graded, grade_submission

#: Workers a submission may kill before it is given up as ``failed``.
ALLOWED_FAILURES = 2
#: Memory a local worker may use before its nanny restarts it (a notebook flooding its output
#: grows the worker that collects it); Dask's "auto" shares the machine's memory among workers.
WORKER_MEMORY = os.environ.get("PA2_WORKER_MEMORY", "auto")


def default_workers():
    """One worker per core: each grades one notebook at a time, whose kernel uses one core."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@contextmanager
def dask_client(scheduler=None, workers=None):
    """A Dask client: on the cluster at ``scheduler``, or on a local cluster of ``workers`` processes."""
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        if scheduler:
            with Client(scheduler, timeout="30s") as client:
                yield client
            return
        with LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                          memory_limit=WORKER_MEMORY, dashboard_address=None, silence_logs=logging.ERROR,
                          worker_dashboard_address=None) as cluster, Client(cluster) as client:
            yield client


def _course_files(course):
    return course


def killed(task, error):
    """The result of a submission whose grading kept killing its worker."""
    return Graded(task.student_id, problem="grading this submission killed the worker process every time "
                                           f"it was tried ({type(error).__name__}: out of memory?); nothing could be scored")


def grade_many(tasks, course, on_result, scheduler=None, workers=None, progress=True):
    """Grade ``tasks`` (a list of :class:`Task`) with the course files ``course`` on Dask workers.

    ``on_result(task, graded)`` is called in this process once for every task, as each finishes.
    """
    if not tasks:
        return
    with dask_client(scheduler, workers) as client:
        # A task that returns the course files, rather than scattered data: if the worker
        # holding them dies, the scheduler makes them again instead of forgetting them.
        shared = client.submit(_course_files, course, key=f"course-{course.digest}", pure=False)
        futures = {client.submit(grade_submission, task, shared, key=f"grade-{task.student_id}", pure=False):
                   task for task in tasks}
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
