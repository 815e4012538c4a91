"""The class report after grading: which checks the class failed, and how, in reports/pa2_clustering/.

* ``tests.csv``: one row per test cell: grade_id, target, points, graded (submissions counted),
  passed, pass_rate, mean_score, discrimination (Pearson correlation of the cell's score with
  the submission's total; empty when either is constant);
* ``students.csv``: one row per submission (failed ones without a score);
* ``similarity.csv``: pairs of submissions with unusually similar answer code (``similarity.py``);
* ``mistakes.csv``: one row per known mistake recognised (``hints.py``): how many students made
  it, and the test cells where it was seen;
* ``report.html``: a score histogram, pass rates per test, the most common failure messages
  per test, the likely mistakes and how many students made each, failed and flagged
  submissions, similar pairs and how long grading took.

Scores come from the gradebook, statuses and grading times from the grading records
(``results.py``). Failed submissions are listed but never enter the statistics (they are not
counted as 0). Flagged ones are listed for review and counted: their verdicts were decided
outside the student's kernel. A test counts as passed with full points; a 0-point visible check
counts as passed when its cell raised no error in the autograded notebook.
"""
import argparse
import base64
import csv
import html
import io
import re
import statistics
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402

from . import ASSIGNMENT, NOTEBOOK, ROOT, results, similarity  # noqa: E402
from .hints import BY_ID, hint_of  # noqa: E402
from .intake import is_test_cell, nbgrader_meta  # noqa: E402
from .outputs import spreadsheet_safe  # noqa: E402

TEST_FIELDS = ["grade_id", "target", "points", "graded", "passed", "pass_rate", "mean_score",
               "discrimination"]
MISTAKE_FIELDS = ["mistake", "students", "seen_in", "sentence"]
STUDENT_FIELDS = ["student_id", "status", "score", "max_score", "pending_manual_points",
                  "tests_passed", "tests", "grading_seconds", "reason"]
#: Numbers in a message (not digits inside names such as act8 or k1): replaced when grouping.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])")
MOST_COMMON = 3


def report_dir(root=ROOT):
    return root / "reports" / ASSIGNMENT


def normalise(message):
    """A failure message with its numbers replaced by ``#`` and spaces collapsed, for grouping."""
    return " ".join(NUMBER.sub("#", message).split())


def failure_messages(notebook):
    """Map grade_id -> "<ename>: <evalue>" of the first error of each cell of an executed notebook."""
    found = {}
    for cell in notebook.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if grade_id and errors:
            found[grade_id] = f"{errors[0].ename}: {errors[0].evalue}"
    return found


def hints_shown(notebook):
    """Map grade_id -> id of the likely mistake shown under each test cell of an autograded
    notebook. Only test cells: their outputs are the grader's, an answer cell's are the kernel's."""
    found = {}
    for cell in notebook.cells:
        grade_id, hint = nbgrader_meta(cell).get("grade_id"), hint_of(cell)
        if grade_id and is_test_cell(cell) and hint and hint[0] in BY_ID:
            found[grade_id] = hint[0]
    return found


def mistake_counts(hints):
    """[(mistake id, its sentence, students who made it, the test cells it was seen in)], most
    students first; ``hints`` maps student_id -> {grade_id: mistake id}."""
    students, cells = Counter(), {}
    for shown in hints.values():
        for mistake in set(shown.values()):
            students[mistake] += 1
        for grade_id, mistake in shown.items():
            cells.setdefault(mistake, set()).add(grade_id)
    return [(m, BY_ID[m].sentence if m in BY_ID else "", n, sorted(cells[m]))
            for m, n in sorted(students.items(), key=lambda item: (-item[1], item[0]))]


def group_messages(messages):
    """Group messages that differ only in numbers: [(pattern, count, an example)], most common first."""
    groups, examples = Counter(), {}
    for message in messages:
        key = normalise(message)
        groups[key] += 1
        examples.setdefault(key, message)
    return [(key, count, examples[key]) for key, count in groups.most_common()]


def correlation(xs, ys):
    """Pearson correlation of two equal-length sequences; None if either is constant or short."""
    if len(xs) < 2 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    return statistics.correlation(xs, ys)


@dataclass
class TestStats:
    grade_id: str
    target: str
    points: float
    scores: list = field(default_factory=list)   # one per counted submission
    passes: list = field(default_factory=list)   # bools, same order
    totals: list = field(default_factory=list)   # the submissions' totals, same order
    messages: list = field(default_factory=list)  # failure messages of the counted submissions

    def row(self):
        graded = len(self.scores)
        disc = correlation(self.scores, self.totals)
        return {"grade_id": self.grade_id, "target": self.target, "points": f"{self.points:g}",
                "graded": graded, "passed": sum(self.passes),
                "pass_rate": f"{sum(self.passes) / graded:.3f}" if graded else "",
                "mean_score": f"{statistics.fmean(self.scores):.3f}" if graded else "",
                "discrimination": "" if disc is None else f"{disc:.3f}"}


def test_statistics(class_results, cells, messages):
    """One TestStats per test cell over the counted submissions.

    ``cells``: [(grade_id, target, points)]; ``messages``: student_id -> {grade_id: message}.
    """
    stats = {g: TestStats(g, t, p) for g, t, p in cells}
    for result in (r for r in class_results if r.counted):
        failed = messages.get(result.student_id, {})
        for grade_id, test in stats.items():
            score, points = result.cells.get(grade_id, (None, None))
            if score is None:
                continue
            test.scores.append(score)
            test.passes.append(score >= points if points > 0 else grade_id not in failed)
            test.totals.append(result.score)
            if grade_id in failed:
                test.messages.append(failed[grade_id])
    return list(stats.values())


def student_rows(class_results, tests):
    rows = []
    for r in class_results:
        passed = sum(1 for t in tests if r.counted and r.cells.get(t.grade_id, (None, 0))[0] is not None
                     and r.cells[t.grade_id][0] >= r.cells[t.grade_id][1] > 0)
        scored = sum(1 for t in tests if t.points > 0)
        rows.append({"student_id": r.student_id, "status": r.status,
                     "score": f"{r.score:g}" if r.counted else "",
                     "max_score": f"{r.max_score:g}" if r.counted else "",
                     "pending_manual_points": f"{r.pending:g}" if r.counted else "",
                     "tests_passed": passed if r.counted else "", "tests": scored if r.counted else "",
                     "grading_seconds": "" if r.seconds is None else f"{r.seconds:.1f}",
                     "reason": r.reason})
    return rows


def write_csv(path, fields, rows):
    """Write ``rows`` (dicts) to ``path``; no cell is read as a formula by a spreadsheet."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows({key: spreadsheet_safe(value) for key, value in row.items()} for row in rows)


def _png(fig):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def score_histogram(scores, max_score):
    """The histogram of the counted totals, as a PNG data URI."""
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(scores, bins=min(16, max(4, int(max_score) // 4)), range=(0, max_score), color="#4c72b0",
            edgecolor="white")
    ax.set_xlabel(f"score (of {max_score:g})")
    ax.set_ylabel("submissions")
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f"Scores of {len(scores)} graded submissions")
    return _png(fig)


def pass_rate_chart(tests):
    """Horizontal bars of each test's pass rate, as a PNG data URI."""
    shown = [t for t in tests if t.scores]
    fig, ax = plt.subplots(figsize=(7, 0.22 * len(shown) + 1))
    rates = [sum(t.passes) / len(t.passes) for t in shown]
    ax.barh(range(len(shown)), rates, color=["#c44e52" if r < 0.5 else "#55a868" for r in rates])
    ax.set_yticks(range(len(shown)), [t.grade_id for t in shown], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("pass rate")
    ax.set_title("Pass rate per test")
    return _png(fig)


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cut(text, limit=300):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def grading_time(class_results):
    """A sentence on how long grading took, from the records' ``seconds``."""
    seconds = [r.seconds for r in class_results if r.seconds is not None]
    if not seconds:
        return "Grading time was not recorded for these submissions."
    missing = len(class_results) - len(seconds)
    return (f"Grading took {sum(seconds):.0f} s in all for {len(seconds)} submissions: "
            f"{statistics.fmean(seconds):.1f} s on average, {max(seconds):.1f} s at most"
            + (f" ({missing} without a record of their time)." if missing else "."))


CSS = """body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;
font-size:.85em;text-align:left;vertical-align:top}th{background:#eee}
.pair{display:flex;gap:1em}.pair pre{flex:1;background:#f7f7f7;padding:.5em;overflow:auto;font-size:.75em}
.charts{display:flex;gap:2em;align-items:flex-start}.charts img{max-width:100%}
.highlight-red{background:#f8c4c4}.highlight-green{background:#c4f0c8}code{font-size:.9em}"""


def render_html(class_results, tests, pairs, mistakes=()):
    """The report page: summary, failed and flagged, charts, failure messages, tests, similar pairs."""
    counted = [r for r in class_results if r.counted]
    statuses = Counter(r.status for r in class_results)
    parts = [f"<h1>Class report: {ASSIGNMENT}</h1>",
             "<p>" + html.escape(f"{len(class_results)} submissions: "
                                 + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))) + ". "
             + html.escape(grading_time(class_results)) + "</p>"]
    if counted:
        scores = [r.score for r in counted]
        parts.append("<p>" + html.escape(
            f"Scores of the {len(counted)} graded submissions (failed ones left out, "
            f"not counted as 0): mean {statistics.fmean(scores):.1f}, median "
            f"{statistics.median(scores):g} of {counted[0].max_score:g}; manual points still "
            f"pending for {sum(1 for r in counted if r.pending)}.") + "</p>")
    unscored = [r for r in class_results if not r.counted or r.status == "flagged"]
    parts.append("<h2>Failed and flagged submissions</h2>"
                 + (_table(["student_id", "status", "reason"], [(r.student_id, r.status, r.reason) for r in unscored])
                    if unscored else "<p>None.</p>"))
    if counted:
        parts.append('<div class="charts"><div><h2>Scores</h2><img alt="score histogram" '
                     f'src="{score_histogram(scores, counted[0].max_score)}"></div><div><h2>Pass rate per test</h2>'
                     f'<img alt="pass rate per test" src="{pass_rate_chart(tests)}"></div></div>')
    parts.append(f"<h2>Most common failure messages</h2><p>Per test, up to {MOST_COMMON} messages; "
                 "messages that differ only in numbers are grouped (numbers shown as #).</p>")
    rows = []
    for t in tests:
        for pattern, count, example in group_messages(t.messages)[:MOST_COMMON]:
            shown = example if count == 1 else pattern
            rows.append((t.grade_id, f"{count} of {len(t.scores)}", _cut(shown)))
    parts.append(_table(["test", "submissions", "message"], rows) if rows else "<p>No test failed.</p>")
    parts.append("<h2>Likely mistakes</h2><p>How many students made each known mistake, recognised from "
                 "the values their functions returned (the hints under their failed checks).</p>")
    parts.append(_table(["mistake", "students", "what they read", "seen in"],
                        [(m, n, sentence, ", ".join(cells)) for m, sentence, n, cells in mistakes])
                 if mistakes else "<p>No known mistake recognised.</p>")
    parts.append("<h2>Tests</h2>" + _table(TEST_FIELDS, [t.row().values() for t in tests]))
    parts.append(f"<h2>Similar answer code</h2><p>Pairs where more than {similarity.THRESHOLD:.0%} of one "
                 "submission's answer code (release stubs left out, names ignored) is also in the "
                 "other, found by copydetect. For a person to look at; grades are not changed.</p>")
    if not pairs:
        parts.append("<p>No pair above the threshold.</p>")
    for p in pairs:
        parts.append(f"<h3>{html.escape(p.student_a)} ({p.similarity_a:.0%}) and "
                     f"{html.escape(p.student_b)} ({p.similarity_b:.0%}), {p.shared_tokens} shared tokens</h3>"
                     f'<div class="pair"><pre>{p.code_a}</pre><pre>{p.code_b}</pre></div>')
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Class report: {ASSIGNMENT}"
            f"</title><style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")


def build(root=ROOT):
    """Write the report files for the course at ``root``; return the report folder."""
    class_results = results.load(root)
    messages, hints = {}, {}
    for r in class_results:
        path = root / "autograded" / r.student_id / ASSIGNMENT / NOTEBOOK
        if r.counted and path.exists():
            notebook = nbformat.read(path, as_version=4)
            messages[r.student_id] = failure_messages(notebook)
            hints[r.student_id] = hints_shown(notebook)
    mistakes = mistake_counts(hints)
    tests = test_statistics(class_results, results.test_cells(root), messages)
    pairs = similarity.find(root)
    out = report_dir(root)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "tests.csv", TEST_FIELDS, [t.row() for t in tests])
    write_csv(out / "students.csv", STUDENT_FIELDS, student_rows(class_results, tests))
    similarity.write_csv(pairs, out / "similarity.csv")
    write_csv(out / "mistakes.csv", MISTAKE_FIELDS,
              [dict(zip(MISTAKE_FIELDS, (m, n, "; ".join(cells), sentence))) for m, sentence, n, cells in mistakes])
    (out / "report.html").write_text(render_html(class_results, tests, pairs, mistakes), encoding="utf-8")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", metavar="PNG", help="also save a screenshot of report.html (headless chromium)")
    args = parser.parse_args(argv)
    out = build()
    print(f"wrote {out.relative_to(ROOT)}/: tests.csv, students.csv, similarity.csv, mistakes.csv, report.html")
    if args.screenshot:
        from .screenshot import screenshot
        screenshot(out / "report.html", args.screenshot)
        print(f"wrote {args.screenshot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
