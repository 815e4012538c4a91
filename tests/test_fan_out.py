"""Grading in parallel and on a real Dask cluster gives exactly what serial grading gives.

The cluster is real: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1,
started here and stopped at the end. One worker is killed with SIGKILL while it grades.
"""
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import pytest
from distributed import Client

from assignment.nbgrader_cli import nbgrader_env

from .conftest import CLASS_STUDENTS, class_course, copy_course, remove_orphaned_semaphores, run_module, snapshot
from .hostile import good_notebook, write


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def submissions_in_gradebook(course):
    """How many times each student's submission is recorded in the course's SQLite gradebook."""
    with sqlite3.connect(course / "gradebook.db") as db:
        return dict(db.execute("SELECT student_id, COUNT(*) FROM submitted_assignment GROUP BY student_id"))


def assert_same_grading(found, reference):
    assert found["rows"] == reference["rows"]
    assert found["scores"] == reference["scores"]
    assert found["feedback"].keys() == reference["feedback"].keys()
    for student, html in reference["feedback"].items():
        assert found["feedback"][student] == html, f"feedback of {student} differs"


def test_parallel_grading_equals_serial_grading(serial_class, tmp_path):
    course = class_course(tmp_path / "parallel")
    result = run_module(course, "grade", "--workers", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_same_grading(snapshot(course), serial_class)
    assert serial_class["rows"]["invalid_json"]["status"] == "failed"
    assert serial_class["rows"]["invalid_json"]["score"] == ""
    # the progress bar counts finished submissions and gives an estimate of the time left
    assert f"{len(CLASS_STUDENTS)}/{len(CLASS_STUDENTS)} [" in result.stderr
    assert "<00:00" in result.stderr and "submission" in result.stderr


@pytest.fixture
def dask_cluster(tmp_path):
    """A ``dask scheduler`` and two ``dask worker`` processes on loopback, each in its own
    process group (a "machine" that can be killed whole)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = nbgrader_env()  # the workers import the grader installed in the venv (make setup)
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    commands = [[dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [[dask, "worker", address, "--nthreads", "1", "--name", name, "--no-dashboard"]
                 for name in ("machine-a", "machine-b")]
    processes, started = [], time.time()
    try:  # every process started is stopped, whatever fails
        for command in commands:
            processes.append(subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            yield address, client
    finally:
        for process in reversed(processes):  # the workers, then the scheduler
            stop_group(process)
        remove_orphaned_semaphores(started)  # those of the machine a test kills on purpose


def stop_group(process, grace=20):
    """Stop the process group ``process`` leads (started with start_new_session), so that a
    test leaves nothing running, whether it passed or failed: SIGTERM first, as a person
    stopping a Dask cluster would (its processes then remove their semaphores from /dev/shm,
    which SIGKILL leaves there), then SIGKILL for whatever is left after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        while time.monotonic() < deadline:
            process.poll()  # the leader, once reaped, is no longer in its group
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
    process.wait()


def test_a_worker_killed_mid_grading_loses_nothing_and_duplicates_nothing(serial_class, dask_cluster, tmp_path):
    address, client = dask_cluster
    course = class_course(tmp_path / "distributed")
    grading = subprocess.Popen([sys.executable, "-m", "assignment.grade", "--scheduler", address],
                               cwd=course, env=nbgrader_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        # wait until a worker is grading, then kill that whole machine (worker and its kernel)
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline:
            busy = {worker: keys for worker, keys in client.processing().items()
                    if any(str(k).startswith("grade-") for k in keys)}
            victim = next(iter(busy), None)
            time.sleep(0.2)
        assert victim, "no worker started grading"
        group = client.run(os.getpgid, 0, workers=[victim])[victim]
        names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
        time.sleep(1.5)  # well inside the grading of a submission (several seconds each)
        interrupted = [str(k)[len("grade-"):] for k in client.processing()[victim] if str(k).startswith("grade-")]
        os.killpg(group, signal.SIGKILL)
        out, err = grading.communicate(timeout=900)
        assert grading.returncode == 0, err[-3000:]
        assert len(client.scheduler_info()["workers"]) == 1
        assert_same_grading(snapshot(course), serial_class)
        graded = [s for s in CLASS_STUDENTS if serial_class["rows"][s]["status"] != "failed"]
        assert submissions_in_gradebook(course) == {s: 1 for s in graded}
        # what the killed machine was grading was graded again, on the machine that survived
        survivor = next(name for address, name in names.items() if address != victim)
        assert interrupted
        for student in interrupted:
            record = json.loads((course / "autograded" / student / "grading.json").read_text())
            assert record["worker"] == survivor, (student, record["worker"])
    finally:
        stop_group(grading)


#: Prints without end, 100 MB a second at most: fast enough to fill an 800 MiB worker within
#: seconds, slow enough that the worker keeps up and the kernel's own memory (capped at 3 GiB,
#: where it would raise MemoryError instead) never holds a backlog.
ENDLESS_FLOOD = 'import time\nwhile True:\n    print("x" * 10**6)\n    time.sleep(0.01)'


def test_a_submission_that_keeps_killing_workers_fails_and_the_others_go_on(tmp_path):
    """A notebook whose output outgrows every worker that collects it ends failed; the others are graded."""
    course = class_course(tmp_path / "killer")
    write(course / "submitted" / "endless_flood", good_notebook(act7_k_means_k2=ENDLESS_FLOOD))
    result = run_module(course, "grade", "--workers", "2", "correct_alternative", "endless_flood",
                        env={"PA2_WORKER_MEMORY": "800MiB"}, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:] if line.strip()}
    assert "failed" in rows["endless_flood"] and "killed the worker process every time" in rows["endless_flood"]
    assert "needs_manual_grading" in rows["correct_alternative"]


def test_grading_again_reuses_every_result(serial_class):
    """Running `make grade` a second time grades nothing again and changes nothing."""
    course = serial_class["course"]
    records = {p: p.stat().st_mtime_ns for p in course.glob("autograded/*/grading.json")}
    assert len(records) == len(CLASS_STUDENTS)
    result = run_module(course, "grade")
    assert result.returncode == 0, result.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in records} == records
    assert_same_grading(snapshot(course), serial_class)


def _housekeeping(dask_worker):
    """What a worker samples and checks, and how often (seconds)."""
    return {"profiles its task": "profile" in dask_worker.periodic_callbacks,
            "event loop check": dask_worker._tick_interval,
            "system monitor": dask_worker.periodic_callbacks["monitor"].callback_time / 1000,
            "memory check": dask_worker.memory_manager.memory_monitor_interval}


def test_a_local_cluster_keeps_dask_housekeeping_to_what_grading_needs(monkeypatch):
    """The local cluster's workers profile no task, and check their event loop and memory twice a
    second; its scheduler allows 2 failures and gives a worker only the task it runs."""
    from assignment.fan_out import dask_client

    monkeypatch.setenv("KERNELS", "fresh")  # no template: only the workers' settings are looked at
    with dask_client(workers=1) as client:
        found = list(client.run(_housekeeping).values())
        scheduler = client.run_on_scheduler(lambda dask_scheduler: {"allowed failures": dask_scheduler.allowed_failures,
                                                                    "saturation": dask_scheduler.WORKER_SATURATION})
    expected = {"profiles its task": False, "event loop check": 0.5, "system monitor": 2.0, "memory check": 0.5}
    assert found == [expected], f"expected {expected}, got {found}"
    # and its scheduler hands a worker only the task it runs: a worker's death counts against no
    # submission waiting there (one in the hostile class was failed for another's kills)
    assert scheduler == {"allowed failures": 2, "saturation": 1.0}, f"expected at most one task per worker, got {scheduler}"


def test_a_class_graded_again_starts_with_the_submissions_that_took_longest(tmp_path, monkeypatch):
    """Graded again, the submissions that took longest last time go first (one never graded, or
    whose record cannot be read, as the median of the others), and a worker grades them in that order."""
    from assignment import grade
    from assignment.outputs import course_paths, record_path

    monkeypatch.setenv("KERNELS", "fresh")  # no template: these submissions never reach a kernel
    course = copy_course(tmp_path / "course", submitted=False)
    last_time = {"a_quick": 4.0, "b_hung": 75.0, "c_new": None, "d_slow": 9.0, "e_quicker": 3.0,
                 "f_cut_off": '{"fingerprint": "of files since'}
    paths = course_paths(course)
    for student, seconds in last_time.items():
        write(course / "submitted" / student, name="notes.txt", raw=b"no notebook here")
        if seconds is not None:
            record = record_path(paths, student)
            record.parent.mkdir(parents=True)
            record.write_text(seconds if isinstance(seconds, str) else  # a record cut off: read as none
                              json.dumps({"fingerprint": "of files since changed", "seconds": seconds}))
    given, finished = [], []

    def recording(tasks, course_bundle, on_result, **options):
        given.extend(task.student_id for task in tasks)

        def on_each(task, graded):
            finished.append(task.student_id)
            on_result(task, graded)
        return real_grade_many(tasks, course_bundle, on_each, **options)
    real_grade_many = grade.grade_many
    monkeypatch.setattr(grade, "grade_many", recording)
    rows = grade.grade_all(progress=False, root=course, workers=1)
    assert [row.status for row in rows] == ["failed"] * len(last_time), rows
    expected = ["b_hung", "d_slow", "c_new", "f_cut_off", "a_quick", "e_quicker"]  # 6.5: the median of 3, 4, 9, 75
    assert (given, finished) == (expected, expected), f"expected {expected} given and finished, got {given}, {finished}"
    assert json.loads(record_path(paths, "f_cut_off").read_text())["row"]["status"] == "failed"


@pytest.mark.parametrize("workers, tasks, expected", [(None, 1, 1), (8, 3, 3), (2, 5, 2), (1, 4, 1)])
def test_a_local_cluster_has_no_more_workers_than_submissions(monkeypatch, workers, tasks, expected):
    """Grading one student again starts one worker, not one per core (each would import the
    scientific stack and start a template for nothing); a cluster's workers are left as they are."""
    from assignment import fan_out

    asked = []

    class Stop(Exception):
        pass

    def checked_client(scheduler=None, workers=None):
        asked.append((scheduler, workers))
        raise Stop

    monkeypatch.setattr(fan_out, "checked_client", checked_client)
    monkeypatch.setattr(fan_out, "default_workers", lambda: 2)
    for scheduler in (None, "tcp://127.0.0.1:8786"):
        with pytest.raises(Stop):
            fan_out.grade_many([object()] * tasks, course=None, on_result=None, scheduler=scheduler, workers=workers)
    assert asked == [(None, expected), ("tcp://127.0.0.1:8786", workers)], \
        f"expected {expected} local workers for {tasks} submissions and the cluster's own, got {asked}"
