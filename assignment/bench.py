"""Benchmark: stock nbgrader against this grader on one class, measured in the same run.

``make bench`` (``python -m assignment.bench --size N``) builds a class of N submissions
(default 40): complete correct ones, wrong ones from the catalogue, and one whose Act 7 cell
never ends. Then, each in a fresh course folder, it grades the whole class:

1. with stock nbgrader, in a plain course folder with no sandbox, the course's per-cell time
   limit only: ``nbgrader autograde``, then ``nbgrader generate_feedback``;
2. with ``python -m assignment.grade --workers 1`` (what ``make grade WORKERS=1`` runs);
3. with ``python -m assignment.grade`` on every core;
4. and 5. the same two with warm kernels (``KERNELS=warm``: forked from a template per worker).

Stock nbgrader and warm kernels on every core, the pair the 3 x target compares, each grade the
class twice: first and last, in the order stock, warm, (the others), warm, stock. The machine's
speed drifts by 10 % or more over the half hour of a run, and a steady drift cancels from the
means of such a pair of pairs; the report gives both runs of each, so the spread is seen.

It checks that the automatic scores of every submission agree across all of them. It also times
the bare class: every notebook exactly as stock nbgrader graded it (the student's answers and
the hidden tests), run one after another by nbclient with the same per-cell limit and nothing
else: no grading, no feedback, no gradebook. That is the work no grader can avoid, so

* the project's cost on 1 worker over the bare class is its overhead (target: at most 1.25 x);
* stock nbgrader's time over the floor (the bare class split across the cores, but never less
  than its longest notebook) is the most any grader that runs every notebook can gain on this
  machine, with no overhead at all: the ceiling for the 3 x target.

It prints seconds per submission and these ratios, and the machine's busy CPU seconds per
submission for each (:class:`Meter`): on a machine every grader keeps busy, the CPU a
submission costs is what decides the speed on every core. It writes them to ``bench/results.json``.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from . import ASSIGNMENT, NOTEBOOK, ROOT, SOURCE_DIR, copy_course
from .examples import fill_release
from .fan_out import default_workers
from .gradebook import cell_scores
from .mutants import automatic_cells, catalogue, reference_answers
from .nbgrader_cli import nbgrader_env, run_nbgrader

RESULTS = ROOT / "bench" / "results.json"
HANGING_CELL = "act7_k_means_k2"


def build_class(size):
    """``size`` submissions (student id -> notebook): correct ones, wrong catalogue entries,
    and one that hangs."""
    base = reference_answers()
    entries = catalogue()
    correct = [e for e in entries if e.expect == "correct"]
    wrong = [e for e in entries if e.expect == "wrong"]
    students = {"hangs_in_act7": fill_release({**base, HANGING_CELL: "while True:\n    pass"})}
    for i in range(size - 1):
        if i % 2 == 0:
            entry = correct[(i // 2) % len(correct)]
        else:
            entry = wrong[(i // 2) % len(wrong)]
        students[f"s{i:03d}_{entry.name}"[:60]] = fill_release({**base, **entry.answers})
    return students


def write_class(course, students):
    for student, nb in students.items():
        path = course / "submitted" / student / ASSIGNMENT / NOTEBOOK
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)


STOCK_CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.course_id = "pa2_clustering_course"
c.Execute.timeout = {timeout}
"""


def stock_course(folder, students, timeout):
    """A plain nbgrader course: the source, the class, and a config with only the cell time limit."""
    folder.mkdir(parents=True)
    shutil.copytree(ROOT / "source", folder / "source")
    (folder / "nbgrader_config.py").write_text(STOCK_CONFIG.format(root=str(folder), timeout=timeout))
    write_class(folder, students)
    run_nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=folder)
    return folder


def busy_cpu_seconds():
    """CPU seconds the whole machine has been busy since it booted, every process and core
    (Linux ``/proc/stat``: all but idle and iowait); None where there is no such file."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall seconds and the machine's busy CPU seconds of what runs in a ``with`` block."""

    def __enter__(self):
        self.cpu, self.started = busy_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        after = busy_cpu_seconds()
        self.cpu_seconds = after - self.cpu if after is not None and self.cpu is not None else None


def timed(command, cwd, env=None, figures=None, key=None):
    """Run ``command``; its wall seconds. With ``figures``, also add the machine's busy CPU
    seconds meanwhile to ``figures[key]``."""
    with Meter() as meter:
        result = subprocess.run(command, cwd=cwd, env=nbgrader_env(env), capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    if figures is not None and meter.cpu_seconds is not None:
        figures[key] = figures.get(key, 0.0) + meter.cpu_seconds
    return meter.seconds


def bare_notebook_seconds(runs=3):
    """Median wall time of running the master notebook (reference answers, hidden tests) with nbclient."""
    times = []
    for _ in range(runs):
        nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
        started = time.perf_counter()
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(SOURCE_DIR)}}).execute()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run_bare(path, timeout):
    """Run the notebook at ``path`` with nbclient alone (in the source folder, for its data):
    each cell gets ``timeout`` seconds, then the kernel is interrupted and the next cell runs.
    Returns the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    return NotebookClient(nb, timeout=timeout, interrupt_on_timeout=True, allow_errors=True, kernel_name="python3",
                          resources={"metadata": {"path": str(SOURCE_DIR)}}).execute()


def bare_class_seconds(stock, students, timeout):
    """Seconds of running each notebook that stock nbgrader graded (answers and hidden tests)
    with nbclient alone, one after another: student id -> seconds."""
    seconds = {}
    for student in students:
        started = time.perf_counter()
        run_bare(stock / "autograded" / student / ASSIGNMENT / NOTEBOOK, timeout)
        seconds[student] = time.perf_counter() - started
    return seconds


def floor_seconds(f):
    """The least time any grader could take on ``f["cores"]`` cores: the bare class perfectly
    split across the cores, but never less than its longest notebook, which one core runs alone."""
    return max(f["bare_class_s"] / f["cores"], f["bare_longest_s"])


def automatic_scores(course, students):
    auto = automatic_cells()
    url = f"sqlite:///{course / 'gradebook.db'}"
    return {s: {g: v for g, v in cell_scores(s, url).items() if g in auto} for s in students}


def grade_stock(folder, students, timeout):
    """Stock nbgrader on the class in a fresh course at ``folder``: seconds of autograde and of
    generate_feedback, machine CPU seconds, automatic scores."""
    course = stock_course(folder, students, timeout)
    nbgrader, cpu = [sys.executable, "-m", "nbgrader"], {}
    autograde = timed(nbgrader + ["autograde", ASSIGNMENT], course, None, cpu, "cpu")
    feedback = timed(nbgrader + ["generate_feedback", ASSIGNMENT], course, None, cpu, "cpu")
    return {"autograde": autograde, "feedback": feedback, "cpu": cpu.get("cpu")}, course, automatic_scores(course, students)


def grade_project(folder, students, args, kernels, reference):
    """This grader on the class in a copy of the course at ``folder``: seconds and machine CPU
    seconds; stops the benchmark if an automatic score differs from ``reference``."""
    course = copy_course(folder)
    shutil.rmtree(course / "submitted", ignore_errors=True)
    write_class(course, students)
    run_nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)
    cpu = {}
    seconds = timed([sys.executable, "-m", "assignment.grade", *args], course, {"KERNELS": kernels}, cpu, "cpu")
    found = automatic_scores(course, students)
    differ = sorted(s for s in students if found[s] != reference[s])
    if differ:
        raise SystemExit(f"{folder.name}: automatic scores differ from stock nbgrader for {', '.join(differ)}")
    return seconds, cpu.get("cpu")


def mean_of(values):
    return None if None in values else sum(values) / len(values)


def run(size, workdir):
    """Grade the class with every grader. Stock nbgrader and warm kernels on every core (the pair
    behind the 3 x target) each run twice, first and last, in the order stock, warm, ..., warm,
    stock: a drift of the machine's speed over the run cancels from their means."""
    students = build_class(size)
    timeout = 60
    figures = {"size": size, "cores": default_workers(), "machine": f"{platform.machine()}, "
               f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"}
    print(f"class of {size} submissions (one hangs in {HANGING_CELL}); timing the bare notebook ...", flush=True)
    figures["bare_notebook_s"] = bare_notebook_seconds()
    stock_runs, warm_runs = [], []

    def stock(name):
        print(f"stock nbgrader ({len(stock_runs) + 1} of 2): autograde, then generate_feedback ...", flush=True)
        measured, course, scores = grade_stock(workdir / name, students, timeout)
        stock_runs.append(measured)
        return course, scores

    def project(label, args, kernels):
        print(f"this grader, {label.replace('_', ' ')} ({kernels} kernels) ...", flush=True)
        return grade_project(workdir / label, students, args, kernels, reference)

    stock_course_folder, reference = stock("stock")
    warm_runs.append(project("warm_all_cores", [], "warm"))
    print("the bare class: every graded notebook run by nbclient alone ...", flush=True)
    with Meter() as meter:
        bare = bare_class_seconds(stock_course_folder, students, timeout)
    if meter.cpu_seconds is not None:
        figures["bare_class_cpu_s"] = meter.cpu_seconds
    figures["bare_class_s"], figures["bare_longest_s"] = sum(bare.values()), max(bare.values())
    for label, args, kernels in (("project_1_worker", ["--workers", "1"], "fresh"), ("project_all_cores", [], "fresh"),
                                 ("warm_1_worker", ["--workers", "1"], "warm")):
        figures[f"{label}_s"], figures[f"{label}_cpu_s"] = project(label, args, kernels)
    warm_runs.append(project("warm_all_cores_again", [], "warm"))
    _, scores = stock("stock_again")
    if scores != reference:
        raise SystemExit("stock nbgrader gave other automatic scores the second time")

    figures["stock_runs_s"] = [r["autograde"] + r["feedback"] for r in stock_runs]
    figures["warm_all_cores_runs_s"] = [seconds for seconds, _ in warm_runs]
    figures["stock_autograde_s"] = mean_of([r["autograde"] for r in stock_runs])
    figures["stock_feedback_s"] = mean_of([r["feedback"] for r in stock_runs])
    figures["stock_s"] = mean_of(figures["stock_runs_s"])
    figures["stock_cpu_s"] = mean_of([r["cpu"] for r in stock_runs])
    figures["warm_all_cores_s"] = mean_of(figures["warm_all_cores_runs_s"])
    figures["warm_all_cores_cpu_s"] = mean_of([cpu for _, cpu in warm_runs])
    figures["scores_agree"] = True
    return {k: v for k, v in figures.items() if v is not None}


def report(f):
    n, cores = f["size"], f["cores"]
    per = {k: f[f"{k}_s"] / n for k in ("stock", "project_1_worker", "project_all_cores", "bare_class")}
    floor = floor_seconds(f)
    lines = [
        f"machine: {f['machine']}",
        f"class: {n} submissions; automatic scores agree across all the graders: {f['scores_agree']}",
        f"bare notebook (nbclient, reference answers): {f['bare_notebook_s']:.2f} s",
        f"bare class (every graded notebook run by nbclient alone, one after another): "
        f"{f['bare_class_s']:.1f} s, {per['bare_class']:.2f} s per submission",
        "",
        f"{'grader':44} {'total s':>9} {'s/submission':>13} {'stock/this':>11}",
        f"{'stock nbgrader (autograde + generate_feedback)':44} {f['stock_s']:9.1f} {per['stock']:13.2f} {1:11.2f}",
        f"{'this grader, fresh kernels, 1 worker':44} {f['project_1_worker_s']:9.1f} {per['project_1_worker']:13.2f} "
        f"{per['stock'] / per['project_1_worker']:11.2f}",
        f"{'this grader, fresh kernels, every core (' + str(f['cores']) + ' workers)':44} {f['project_all_cores_s']:9.1f} "
        f"{per['project_all_cores']:13.2f} {per['stock'] / per['project_all_cores']:11.2f}",
    ]
    if "warm_all_cores_s" in f:  # kernels forked from a warm template (issue 16)
        per.update({k: f[f"{k}_s"] / n for k in ("warm_1_worker", "warm_all_cores")})
        lines += [
            f"{'this grader, warm kernels, 1 worker':44} {f['warm_1_worker_s']:9.1f} {per['warm_1_worker']:13.2f} "
            f"{per['stock'] / per['warm_1_worker']:11.2f}",
            f"{'this grader, warm kernels, every core':44} {f['warm_all_cores_s']:9.1f} "
            f"{per['warm_all_cores']:13.2f} {per['stock'] / per['warm_all_cores']:11.2f}",
            "",
            f"warm kernels on 1 worker cost {f['warm_1_worker_s'] / f['bare_class_s']:.2f} x the bare class "
            f"(target: less than 1 x); on every core {per['stock'] / per['warm_all_cores']:.2f} x as fast as stock "
            f"nbgrader (target at least 3 x) and {f['project_all_cores_s'] / f['warm_all_cores_s']:.2f} x as fast "
            "as fresh kernels",
        ]
    if "stock_runs_s" in f and "warm_all_cores_runs_s" in f:
        stock_runs, warm_runs = f["stock_runs_s"], f["warm_all_cores_runs_s"]
        lines += [
            f"each measured twice, first and last (stock, warm, ..., warm, stock): stock nbgrader "
            f"{' s and '.join(f'{t:.1f}' for t in stock_runs)} s; warm kernels on every core "
            f"{' s and '.join(f'{t:.1f}' for t in warm_runs)} s; stock/this from the first pair "
            f"{stock_runs[0] / warm_runs[0]:.2f} x, from the last pair {stock_runs[-1] / warm_runs[-1]:.2f} x, "
            f"from the means {f['stock_s'] / f['warm_all_cores_s']:.2f} x",
        ]
    lines += [
        "",
        f"stock nbgrader: autograde {f['stock_autograde_s'] / n:.2f} s + feedback {f['stock_feedback_s'] / n:.2f} s per submission",
        f"stock nbgrader costs {f['stock_s'] / f['bare_class_s']:.2f} x the bare class",
        f"this grader on 1 worker costs {f['project_1_worker_s'] / f['bare_class_s']:.2f} x the bare class "
        f"(overhead {per['project_1_worker'] - per['bare_class']:+.2f} s per submission; target at most 1.25 x)",
        f"floor on {cores} cores (the bare class split across them, but no less than its longest notebook, "
        f"{f['bare_longest_s']:.1f} s): {floor / n:.2f} s per submission; every core runs at "
        f"{floor / f['project_all_cores_s']:.0%} of that speed",
        f"speed-up over stock nbgrader on every core: {per['stock'] / per['project_all_cores']:.2f} x (target at least 3 x)",
        f"ceiling: a grader with no overhead at all, perfectly split over {cores} cores, would be "
        f"{f['stock_s'] / floor:.2f} x as fast as stock nbgrader here",
    ]
    lines += cpu_report(f)
    return "\n".join(lines)


def cpu_report(f):
    """Lines on the CPU the whole machine spent per submission for each grader, and what the 3 x
    target leaves: every core busy all the time, the class in a third of stock nbgrader's time."""
    labels = [("bare_class", "the bare class"), ("stock", "stock nbgrader"),
              ("project_1_worker", "fresh kernels, 1 worker"), ("project_all_cores", "fresh kernels, every core"),
              ("warm_1_worker", "warm kernels, 1 worker"), ("warm_all_cores", "warm kernels, every core")]
    known = [(key, label) for key, label in labels if f.get(f"{key}_cpu_s") is not None]
    if not known:
        return []
    n = f["size"]
    lines = ["", "CPU seconds of the whole machine (every process, every core) per submission:"]
    lines += [f"  {label:28} {f[f'{key}_cpu_s'] / n:6.2f}" for key, label in known]
    budget = f["cores"] * f["stock_s"] / 3 / n
    lines.append(f"3 x stock nbgrader on every core leaves at most {budget:.2f} CPU s per submission "
                 f"(all {f['cores']} cores busy for a third of stock's {f['stock_s']:.1f} s)")
    if f.get("warm_all_cores_cpu_s") is not None:
        lines[-1] += f"; warm kernels on every core used {f['warm_all_cores_cpu_s'] / n:.2f}"
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=40, help="submissions in the class (default 40)")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="pa2-bench-"))
    try:
        figures = run(args.size, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n" + report(figures))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
