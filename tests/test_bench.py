"""The benchmark's parts: the class it builds, the bare runs it measures, the ratios it prints."""
import time

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from assignment.bench import HANGING_CELL, build_class, report, run_bare


def test_class_mixes_correct_wrong_and_one_hanging_submission():
    """The class has the size asked for, one submission that hangs, and correct and wrong catalogue entries."""
    students = build_class(6)
    assert len(students) == 6, f"expected 6 submissions, got {len(students)}"
    hanging = [s for s, nb in students.items()
               if any(c.metadata.get("nbgrader", {}).get("grade_id") == HANGING_CELL and "while True" in c.source
                      for c in nb.cells)]
    assert hanging == ["hangs_in_act7"], f"expected one hanging submission, got {hanging}"
    names = sorted(students)
    assert any("s000_" in n for n in names) and any("s001_" in n for n in names), f"expected both kinds, got {names}"


def test_bare_run_goes_on_after_a_cell_that_hangs(tmp_path):
    """A bare run interrupts a cell at the time limit and runs the cells after it, as graders do."""
    path = tmp_path / "hangs.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("while True:\n    pass"),
                                       new_code_cell("print(x + 1)")]), path)
    ran = run_bare(path, timeout=2)
    assert ran.cells[1].outputs[0].ename == "KeyboardInterrupt", f"expected the hang interrupted, got {ran.cells[1].outputs}"
    assert ran.cells[2].outputs[0].text == "2\n", f"expected the last cell to print 2, got {ran.cells[2].outputs}"


def test_report_prints_ratios_against_stock_and_the_ceiling():
    """The report divides by the same-run figures: stock/this, overhead over the bare class, the ceiling."""
    figures = {"size": 10, "cores": 2, "machine": "test", "scores_agree": True, "bare_notebook_s": 1.0,
               "bare_class_s": 100.0, "bare_longest_s": 30.0, "stock_s": 240.0, "stock_autograde_s": 200.0, "stock_feedback_s": 40.0,
               "project_1_worker_s": 120.0, "project_all_cores_s": 80.0}
    text = report(figures)
    for expected in ("2.40 x the bare class", "1.20 x the bare class", "overhead +2.00 s per submission",
                     "30.0 s): 5.00 s per submission; every core runs at 62% of that speed",
                     "on every core: 3.00 x", "would be 4.80 x as fast as stock nbgrader"):
        assert expected in text, f"expected {expected!r} in the report, got:\n{text}"
    figures.update(warm_1_worker_s=90.0, warm_all_cores_s=50.0)  # and warm kernels beside fresh ones
    text = report(figures)
    for expected in ("warm kernels on 1 worker cost 0.90 x the bare class", "on every core 4.80 x as fast as stock",
                     "1.60 x as fast as fresh kernels"):
        assert expected in text, f"expected {expected!r} in the report, got:\n{text}"
    figures["bare_longest_s"] = 60.0  # one notebook longer than half the class: the floor is that notebook
    text = report(figures)
    assert "would be 4.00 x as fast" in text, f"expected the longest notebook to set the floor, got:\n{text}"


def test_report_gives_both_runs_of_the_pair_measured_first_and_last():
    """Stock nbgrader and warm kernels on every core ran twice each: the report gives both runs
    and the ratio from each pair and from the means."""
    figures = {"size": 10, "cores": 2, "machine": "test", "scores_agree": True, "bare_notebook_s": 1.0,
               "bare_class_s": 100.0, "bare_longest_s": 30.0, "stock_autograde_s": 200.0, "stock_feedback_s": 40.0,
               "project_1_worker_s": 120.0, "project_all_cores_s": 80.0, "warm_1_worker_s": 90.0,
               "stock_runs_s": [250.0, 230.0], "warm_all_cores_runs_s": [52.0, 48.0],
               "stock_s": 240.0, "warm_all_cores_s": 50.0}
    text = report(figures)
    expected = ("stock nbgrader 250.0 s and 230.0 s; warm kernels on every core 52.0 s and 48.0 s; "
                "stock/this from the first pair 4.81 x, from the last pair 4.79 x, from the means 4.80 x")
    assert expected in text, f"expected {expected!r} in the report, got:\n{text}"
    del figures["stock_runs_s"], figures["warm_all_cores_runs_s"]  # a run of one each: no such line
    assert "first pair" not in report(figures)


def test_report_prints_the_cpu_per_submission_and_what_the_target_leaves():
    """With the machine's CPU measured, the report gives CPU seconds per submission for each
    grader, and the most a grader may use for 3 x stock nbgrader on every core."""
    figures = {"size": 10, "cores": 2, "machine": "test", "scores_agree": True, "bare_notebook_s": 1.0,
               "bare_class_s": 100.0, "bare_longest_s": 30.0, "stock_s": 240.0, "stock_autograde_s": 200.0,
               "stock_feedback_s": 40.0, "project_1_worker_s": 120.0, "project_all_cores_s": 80.0,
               "warm_1_worker_s": 90.0, "warm_all_cores_s": 50.0}
    assert "CPU seconds" not in report(figures)  # no /proc/stat: nothing made up
    figures.update(bare_class_cpu_s=95.0, stock_cpu_s=250.0, warm_all_cores_cpu_s=180.0)
    text = report(figures)
    for expected in ("  the bare class                 9.50", "  stock nbgrader                25.00",
                     "  warm kernels, every core      18.00",
                     "leaves at most 16.00 CPU s per submission (all 2 cores busy for a third of stock's 240.0 s); "
                     "warm kernels on every core used 18.00"):
        assert expected in text, f"expected {expected!r} in the report, got:\n{text}"
    assert "fresh kernels, 1 worker " not in text.split("CPU seconds")[1]  # not measured: not printed


def test_busy_cpu_seconds_grows_with_work_done():
    """The machine's busy CPU seconds grow by at least the CPU this process spends."""
    from assignment.bench import Meter
    with Meter() as meter:
        started = time.process_time()
        while time.process_time() - started < 0.3:
            pass
    assert meter.cpu_seconds is not None and meter.cpu_seconds >= 0.25, f"expected >= 0.25 s, got {meter.cpu_seconds}"
