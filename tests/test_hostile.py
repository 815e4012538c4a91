"""Grading survives broken and hostile submissions: each case of tests/hostile.py gets its
stated outcome, good submissions beside them keep full marks, nothing leaks, nothing is lost."""
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import pytest

from assignment import ASSIGNMENT, NOTEBOOK, ROOT, grade, worker_folders
from assignment.nbgrader_cli import nbgrader_env
from assignment.sandbox import bwrap_works

from .conftest import copy_course, hidden_code_lines, remove_orphaned_semaphores, run_module, set_cell_timeout
from .hostile import CASES, auto_losses, build

MAX_SCORE = sum(c.metadata["nbgrader"]["points"] for c in nbformat.read(ROOT / "source" / ASSIGNMENT / NOTEBOOK, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade"))
HIDDEN_LINES = hidden_code_lines()
needs_bwrap = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not usable on this machine")


class Listener:
    """A TCP server on loopback that counts the connections it receives."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.2)
        self.port, self.connections, self.running = self.server.getsockname()[1], 0, True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                self.server.accept()[0].close()
                self.connections += 1
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.server.close()


#: The cases that take longest to grade, longest first (seconds on one worker: hangs waiting out
#: their limits, or a stand-in's three workers).
SLOWEST = ("uninterruptible_hang", "endless_loops", "standin_never_returns", "ignores_interrupt")


def read_rows(course):
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def hostile_course(tmp_path_factory):
    course = copy_course(tmp_path_factory.mktemp("hostile"), submitted=False)
    set_cell_timeout(course, 12)  # the hanging cases wait less; the slowest good cell (memory_bomb) needs about 6 s
    shutil.copytree(ROOT / "submitted" / "correct_alternative",
                    course / "submitted" / "correct_alternative")
    outside = course / "written_by_student.txt"
    neighbour = course / "autograded" / "correct_alternative" / "written_by_student.txt"
    listener = Listener()
    context = {"port": listener.port, "targets": [str(outside), str(neighbour), "/tmp/pa2_written_by_student.txt"],
               "link_target": str(course / "nbgrader_config.py")}
    for case in CASES:
        build(case, course / "submitted" / case, context)
    # the longest first, as a class graded again is ordered by its last run (grade.longest_first):
    # a new class goes in the order given, and by name the 40 s hang came last, a worker idle meanwhile
    order = sorted((p.name for p in (course / "submitted").iterdir()),
                   key=lambda s: (SLOWEST.index(s) if s in SLOWEST else len(SLOWEST), s))
    try:
        # a stand-in's answer ends its worker after 3 s, not 30 (the others take milliseconds):
        # the stand-in that never returns is tried on three workers
        result = run_module(course, "grade", *order, env={"PA2_STANDIN_SECONDS": "3"})
    finally:
        listener.close()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "grades.csv is left as it was" in result.stdout and not (course / "grades.csv").exists()
    recorded = {p: p.stat().st_mtime_ns for p in course.glob("autograded/*/grading.json")}
    result = run_module(course, "grade")  # the whole class: grades nothing again, writes grades.csv
    assert result.returncode == 0 and "wrote grades.csv" in result.stdout, result.stdout[-3000:] + result.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in recorded} == recorded, "the run over the whole class graded someone again"
    return {"course": course, "rows": read_rows(course), "connections": listener.connections,
            "written": [p for p in (outside, neighbour) if p.exists()]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_case_gets_its_stated_outcome(hostile_course, case):
    what, status, phrase, may_lose = CASES[case]
    row = hostile_course["rows"][case]
    assert row["status"] == status, (what, row)
    assert phrase in row["reason"], (what, row)
    if status == "failed":
        assert row["score"] == "" and row["max_score"] == "", "a failed grading must not look like a 0"
    if may_lose is not None:
        assert auto_losses(hostile_course["course"], case) <= may_lose, what


def test_a_cell_that_ignores_the_interrupt_is_stopped_by_a_restart_and_the_next_cells_show_their_output(hostile_course):
    """expected the stuck cell stopped by a restart and the next cell's printed losses and figure,
    got a cell that was not restarted, or output lost because IOPub was not connected again"""
    nb = nbformat.read(hostile_course["course"] / "autograded" / "ignores_interrupt" / ASSIGNMENT / NOTEBOOK, as_version=4)
    outputs = {c.metadata.get("nbgrader", {}).get("grade_id"): c.get("outputs", []) for c in nb.cells}
    stuck = [o.get("evalue", "") for o in outputs["act7_k_means_k2"]]
    assert any("ignored the interrupt, so the grader restarted the kernel" in e for e in stuck), f"expected a restart, got {stuck}"
    after = [(o.output_type, o.get("text", "")[:8]) for o in outputs["act7_k_means_k3"]]
    assert after == [("stream", "losses: "), ("display_data", "")], f"expected printed losses and a figure, got {after}"


def test_a_run_graded_again_sees_nothing_an_earlier_runs_kernel_wrote(hostile_course):
    """expected the kernel of the second run to find no note from the first, got one: a kernel
    could then learn the instructor's answers in one run and use them in the next"""
    nb = nbformat.read(hostile_course["course"] / "autograded" / "kernel_exit" / ASSIGNMENT / NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") ==
                      "act7_k_means_k3" for o in c.get("outputs", []))
    assert "a note from an earlier run: none" in printed, printed[:500]


def test_odd_files_are_graded_and_neither_leak_nor_reach_the_terminal(hostile_course):
    """expected the linked instructor file unseen by the kernel, and the forged grade_id written
    as its escapes in grades.csv, got the file's text in the notebook or raw control characters"""
    nb = nbformat.read(hostile_course["course"] / "autograded" / "odd_files" / ASSIGNMENT / NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "LINKED: absent" in printed, printed[:1000]
    reason = hostile_course["rows"]["odd_files"]["reason"]
    assert "\\r\\x1b[2Kforged" in reason, reason
    assert not any(ord(ch) < 32 or 0x7f <= ord(ch) <= 0x9f for ch in reason), repr(reason)


def test_the_class_report_covers_a_class_of_hostile_submissions(hostile_course):
    """expected `make report` to succeed on this class (an int as a cell's nbgrader metadata, a
    lone surrogate in an answer used to stop it for everyone), got a failure"""
    result = run_module(hostile_course["course"], "report")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    students = (hostile_course["course"] / "reports" / ASSIGNMENT / "students.csv").read_text()
    assert "odd_files" in students and "\x1b" not in students


def test_good_submissions_in_the_mix_keep_full_marks(hostile_course):
    for student in ("good", "correct_alternative", "memory_bomb", "output_flood", "duplicated_cells",
                    "deleted_test_cells", "edited_test_cells", "stripped_metadata", "snooping", "odd_files"):
        assert auto_losses(hostile_course["course"], student) == set(), student
        assert float(hostile_course["rows"][student]["max_score"]) == MAX_SCORE, student


def test_tampering_does_not_buy_points_silently(hostile_course):
    for case in ("tamper_numpy", "tamper_custom_exc", "tamper_builtins", "tamper_sys_modules",
                 "tamper_check_helpers"):
        row = hostile_course["rows"][case]
        assert row["status"] == "flagged" and row["reason"].startswith("flagged for review"), row


def test_output_flood_is_cut_and_the_notebook_stays_small(hostile_course):
    path = hostile_course["course"] / "autograded" / "output_flood" / ASSIGNMENT / NOTEBOOK
    assert path.stat().st_size < 2_000_000
    assert "more characters cut by the grader" in path.read_text()


def test_a_memory_bomb_is_stopped_by_the_kernels_memory_cap_not_by_the_clock(hostile_course):
    """The Act 7 cell that allocates without end ends in MemoryError, well within its time: the
    memory_bomb case proves the cap, not only that some limit stopped the cell."""
    nb = nbformat.read(hostile_course["course"] / "autograded" / "memory_bomb" / ASSIGNMENT / NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "act7_k_means_k2")
    errors = [o.ename for o in cell.outputs if o.output_type == "error"]
    assert errors == ["MemoryError"], f"expected the cell to end in MemoryError, got errors {errors}"


def test_feedback_never_shows_hidden_code(hostile_course):
    for case in ("endless_loops", "tamper_numpy", "deleted_test_cells", "stripped_metadata"):
        html = (hostile_course["course"] / "feedback" / case / ASSIGNMENT / "clustering.html").read_text()
        assert [line for line in HIDDEN_LINES if line in html] == [], case


@needs_bwrap
def test_student_code_finds_nothing_reaches_nothing_writes_nothing(hostile_course):
    nb = nbformat.read(hostile_course["course"] / "autograded" / "snooping" / ASSIGNMENT / NOTEBOOK, as_version=4)
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "SNOOP found under /usr: []" in printed and "SNOOP found: []" in printed, printed[:2000]
    assert "SNOOP network: blocked" in printed and "connected" not in printed
    assert hostile_course["connections"] == 0
    assert hostile_course["written"] == []
    assert not os.path.exists("/tmp/pa2_written_by_student.txt")


def test_grading_twice_gives_the_same_grades_and_a_killed_run_resumes(tmp_path):
    course = copy_course(tmp_path / "course", submitted=False)
    for case in ("good", "invalid_json", "duplicated_cells", "tamper_check_helpers"):
        build(case, course / "submitted" / case, {"port": 1, "targets": []})
    # start grading, kill it as soon as the first submission is recorded
    started = time.time()
    process = subprocess.Popen([sys.executable, "-m", "assignment.grade", "--no-feedback"], cwd=course,
                               env=nbgrader_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    records = lambda: sorted(course.glob("autograded/*/grading.json"))
    deadline = time.time() + 600
    while not records() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    remove_orphaned_semaphores(started)  # the killed run's, which its resource tracker cannot remove
    finished = {p: p.stat().st_mtime_ns for p in records()}
    assert 1 <= len(finished) < 4
    assert run_module(course, "grade", "--no-feedback").returncode == 0
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished grades were redone"
    first = (course / "grades.csv").read_text()
    assert len(read_rows(course)) == 4
    assert run_module(course, "grade", "--no-feedback", "--force").returncode == 0
    assert (course / "grades.csv").read_text() == first


def worker_folders_now(group=None):
    """The worker folders in the temporary folder now (``assignment.worker_folders``); with
    ``group``, only those of the processes in that process group."""
    found = set()
    for folder in (p for prefix in worker_folders.PREFIXES for p in Path(tempfile.gettempdir()).glob(f"{prefix}*")):
        try:
            if group is None or os.getpgid(int((folder / "worker.pid").read_text())) == group:
                found.add(str(folder))
        except (OSError, ValueError):
            pass
    return found


def processes_naming(paths):
    """The processes whose command line names one of ``paths`` (a kernel names its connection file)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(path in words for path in paths):
            found.append(words.replace("\0", " ")[:200])
    return found


def test_ctrl_c_stops_a_run_cleanly_and_the_next_run_grades_the_rest(tmp_path):
    """Ctrl-C in the terminal sends SIGINT to the whole process group: coordinator and local
    workers. The run must end in seconds with one line saying what is kept, no traceback, no
    worker, template or kernel left running and no worker folder left in /tmp; the next run
    grades only what was not recorded."""
    course = copy_course(tmp_path / "course", submitted=False)
    for case in ("good", "duplicated_cells", "tamper_check_helpers"):
        build(case, course / "submitted" / case, {"port": 1, "targets": []})
    with open(tmp_path / "stderr", "w+") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "assignment.grade", "--no-feedback"], cwd=course,
                                   env=nbgrader_env(), stdout=subprocess.DEVNULL, stderr=stderr,
                                   start_new_session=True)
        records = lambda: sorted(course.glob("autograded/*/grading.json"))
        deadline = time.time() + 600
        while not records() and time.time() < deadline and process.poll() is None:
            time.sleep(0.2)
        made = worker_folders_now(group=process.pid)  # its workers' (the group it leads)
        os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        stopped = time.time()
        try:
            assert process.wait(timeout=120) == 130
        finally:  # a run that did not stop must not go on grading beside the next tests
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                remove_orphaned_semaphores(stopped)
        seconds = time.time() - stopped
        stderr.seek(0)
        said = stderr.read()
    finished = {p: p.stat().st_mtime_ns for p in records()}
    assert 1 <= len(finished) < 3
    assert made, "no worker folder was seen while grading"
    assert re.search(rf"interrupted: {len(finished)} of the 3 submissions to grade were graded and are kept", said), said
    assert "Traceback" not in said, said
    assert seconds < 60, f"expected the run to stop within a minute of Ctrl-C, got {seconds:.0f} s"
    assert [folder for folder in made if os.path.exists(folder)] == [], "expected no worker folder left behind"
    assert processes_naming(made) == [], "expected no worker, template or kernel left running"
    assert run_module(course, "grade", "--no-feedback").returncode == 0
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "finished grades were redone"
    assert sorted(read_rows(course)) == ["duplicated_cells", "good", "tamper_check_helpers"]


def test_ctrl_c_while_the_class_is_read_says_nothing_was_graded(monkeypatch, capsys):
    """Ctrl-C before any submission reached a worker (the class being read) is one line too."""
    def read_for_ever(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(grade, "grade_all", read_for_ever)
    try:
        status = grade.main([])
    except KeyboardInterrupt:
        pytest.fail("expected one line and exit status 130, got KeyboardInterrupt with its traceback")
    assert status == 130
    said = capsys.readouterr().err
    assert said.strip() == "interrupted before the grading began: nothing was graded in this run", said
