"""The summary at the top of every feedback page (assignment/summary.py): score, points per part,
every failed check by name with its message, likely mistake and a link to its cell."""
import re

import nbformat
from bs4 import BeautifulSoup

from assignment import ASSIGNMENT, NOTEBOOK, RELEASE_DIR
from assignment.gradebook import cell_scores
from assignment.hints import hint_of
from assignment.summary import check_name, render_html, short_lines, summarise

SEED = "seed_transcript"


def graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
            and (c.metadata["nbgrader"].get("points") or 0) > 0]


def test_the_parts_follow_the_notebooks_headings_and_add_up_to_its_points():
    release = nbformat.read(RELEASE_DIR / NOTEBOOK, as_version=4)
    cells = graded_cells(release)
    scores = {c.metadata.nbgrader.grade_id: (None if c.metadata.nbgrader.get("solution") else 0.0,
                                             c.metadata.nbgrader.points) for c in cells}
    summary = summarise(release, scores)
    names = [p.name for p in summary.parts]
    assert names[:4] == ["Act 1A", "Act 1B", "Act 1B: free response", "Act 2"], names
    assert [n for n in names if not n.startswith("Act")] == ["Simulated data: free response", "Digits: free response"]
    assert {"Act 8: free response 1", "Act 8: free response 2", "Act 8: plot, graded by hand", "Act 10"} <= set(names)
    assert len(set(names)) == len(names)
    manual = sum(c.metadata.nbgrader.points for c in cells if c.metadata.nbgrader.get("solution"))
    automatic = sum(c.metadata.nbgrader.points for c in cells if not c.metadata.nbgrader.get("solution"))
    assert summary.automatic == (0, automatic) and summary.by_hand == (0, manual) and summary.pending == manual
    assert len(summary.failed) == len([c for c in cells if not c.metadata.nbgrader.get("solution")])
    assert "still to come" in render_html(summary)


def test_a_checks_name_is_its_docstring_in_words():
    assert check_name('"""Hidden: compute_sq_dists leaves X and W unchanged, and returns the right distances."""\n'
                      '### BEGIN HIDDEN TESTS') == "compute_sq_dists leaves X and W unchanged, and returns the right distances"
    assert check_name('"""Checks losst and lossv: 20 values each."""\ncheck(...)') == "Checks losst and lossv: 20 values each"


def summary_section(course, student=SEED):
    html = (course / "feedback" / student / ASSIGNMENT / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    return html, BeautifulSoup(html, "html.parser")


def test_make_grade_puts_the_summary_above_the_notebook_with_every_failed_check(graded_course):
    html, soup = summary_section(graded_course)
    section = soup.find(id="pa2-summary")
    assert section is not None, "no summary on the feedback page"
    assert html.index('id="pa2-summary"') < html.index('id="notebook"'), "the summary must come before the notebook"
    autograded = nbformat.read(graded_course / "autograded" / SEED / ASSIGNMENT / NOTEBOOK, as_version=4)
    scores = cell_scores(SEED, f"sqlite:///{graded_course / 'gradebook.db'}")
    failed = [c for c in graded_cells(autograded) if not c.metadata.nbgrader.get("solution")
              and scores[c.metadata.nbgrader.grade_id][0] < scores[c.metadata.nbgrader.grade_id][1]]
    assert failed, "the seed transcript should fail some checks"
    items = section.select("ol.pa2-failed > li")
    expected = [c.metadata.nbgrader.grade_id for c in failed]
    assert [li.a["href"] for li in items] == [f"#{g}" for g in expected]
    anchors = {a.get("name") for a in soup.find_all("a") if a.get("name")}
    assert set(expected) <= anchors, "every failed check links to its cell"
    for li, cell in zip(items, failed):
        assert li.a.get_text() == check_name(cell.source)
        error = next(o for o in cell.outputs if o.output_type == "error")
        assert li.select_one(".message").get_text() == (f"{error.ename}: {error.evalue}" if error.evalue else error.ename)
        hint = hint_of(cell)
        shown = li.select_one(".pa2-hint")
        assert (shown is not None) == (hint is not None), cell.metadata.nbgrader.grade_id
    assert section.select(".pa2-hint"), "the seed transcript's summed loss should get its hint"
    text = " ".join(section.get_text(" ").split())
    total = sum(s for s, _ in scores.values() if s is not None)
    assert re.search(rf"Score: {total:g} of {sum(m for _, m in scores.values()):g} points", text), text[:200]
    assert "still to come" in text
    assert section.find("script") is None and not re.search(r"(src|href)=\"(https?:)?//", str(section))


def test_short_lines_name_each_failed_check_and_fit_a_gradebook_cell(graded_course):
    autograded = nbformat.read(graded_course / "autograded" / SEED / ASSIGNMENT / NOTEBOOK, as_version=4)
    scores = cell_scores(SEED, f"sqlite:///{graded_course / 'gradebook.db'}")
    summary = summarise(autograded, scores)
    lines = short_lines(summary)
    assert len(lines) == len(summary.failed) > 0
    assert all(line.startswith(check.name + ": ") and len(line) < 600 for line, check in zip(lines, summary.failed))
    assert any("Likely mistake: " in line for line in lines)


def test_the_manual_points_say_what_is_graded_so_far_and_what_is_to_come():
    """Part-way through grading by hand, the summary says the points given out of those graded so
    far, and the points still to come; before, it put the given points beside the whole total."""
    release = nbformat.read(RELEASE_DIR / NOTEBOOK, as_version=4)
    cells = graded_cells(release)
    manual = [c for c in cells if c.metadata.nbgrader.get("solution")]
    graded, waiting = manual[:2], manual[2:]
    scores = {c.metadata.nbgrader.grade_id: (0.0, c.metadata.nbgrader.points) for c in cells}
    scores.update({c.metadata.nbgrader.grade_id: (c.metadata.nbgrader.points - 1, c.metadata.nbgrader.points)
                   for c in graded})
    scores.update({c.metadata.nbgrader.grade_id: (None, c.metadata.nbgrader.points) for c in waiting})
    given = sum(c.metadata.nbgrader.points - 1 for c in graded)
    so_far = sum(c.metadata.nbgrader.points for c in graded)
    to_come = sum(c.metadata.nbgrader.points for c in waiting)
    text = " ".join(BeautifulSoup(render_html(summarise(release, scores)), "html.parser").get_text(" ").split())
    expected = f"answers graded by hand: {given:g} of the {so_far:g} points graded so far, {to_come:g} points still to come"
    assert expected in text, f"expected {expected!r}, got {text[:300]!r}"


def test_a_notebook_left_as_released_gets_no_likely_mistake(graded_course):
    """The untouched release fails its checks with the values of the notebook's own examples (its
    `indices` is the demo's, of shape (1, 3)): no check of an answer left as released names a
    likely mistake the student never made."""
    _, soup = summary_section(graded_course, "untouched_release")
    hints = [h.get_text(" ") for h in soup.select("#pa2-summary .pa2-hint")]
    assert hints == [], f"expected no likely mistake for a notebook left as released, got {hints}"
