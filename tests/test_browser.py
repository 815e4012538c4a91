"""Browser tests in headless chromium: formgrader, a student's Validate button, the feedback page.

One JupyterLab server (course copy as root, token, 127.0.0.1, a free port) serves formgrader
and the student's notebooks. Each step leaves a screenshot in $PA2_ARTEFACTS (or a pytest
temp folder).
"""
import csv
import re
import shutil

import nbformat
import pytest
from nbgrader.api import Gradebook

from assignment import ASSIGNMENT, NOTEBOOK
from assignment.gradebook import db_url
from assignment.nbgrader_cli import run_nbgrader
from assignment.rubric import rubric_entries

from .browser import TOKEN, artefacts_dir, chromium, jupyter_lab
from .conftest import run_module
from .hostile import after_act7, good_notebook, write
from .test_rubric import words

GRADED_STUDENT = "correct_alternative"   # all tests pass; only the manual cells are open
FEEDBACK_STUDENT = "seed_transcript"     # loses points in several checks
COMMENT = "Clear reasoning; say why the shape of indices decides the result."
VALIDATE_TIMEOUT_MS = 180_000
HIJACKED = "compute_sq_dists_matches_cdist"  # formgrader finds a grade's score box by the first element with its id
MARKUP_STUDENT = "markup_that_runs_script"  # its answers carry script in every form a page could run


def _mark(number, window="window"):
    """JavaScript that adds ``number`` to ``window.__pa2_ran``: proof that a student's markup ran."""
    return f"{window}.__pa2_ran=({window}.__pa2_ran||[]).concat([{number}])"


#: number -> what the student's markup tries; each payload below records its number when it runs.
PAYLOADS = {1: "<script> in a markdown answer", 2: "<img onerror> in a markdown answer",
            3: "<script> in an HTML output", 4: "<img onerror> in an HTML output",
            5: "a JavaScript output", 6: "<img onerror> in a Markdown output",
            7: "an event handler slipped into a PNG output's width", 8: "<svg onload> and <script> in an SVG output",
            9: "an <iframe srcdoc> in an HTML output", 10: "a javascript: link in a markdown answer",
            11: "a files/javascript: link in a markdown answer (nbconvert strips files/ after cleaning)",
            12: "a files/javascript: markdown link in a markdown answer"}
MARKUP_ANSWER = (
    "Each row of `indices` picks one element of the same row of `arr`.\n\n"
    f"<script>{_mark(1)}</script>\n\n"
    f'<img src="x" onerror="{_mark(2)}">\n\n'
    '<div class="alert alert-info pa2-rubric"><strong>Rubric (from the source)</strong> '
    "any answer earns both points</div>\n\n"
    f'<a href="javascript:{_mark(10)}">see also</a>\n\n'
    f'<a href="files/javascript:{_mark(11)}">my derivation</a> [or this](files/javascript:{_mark(12)})\n\n'
    f'<h6 id="{HIJACKED}"></h6>\n')
MARKUP_OUTPUTS = f"""
from IPython.display import HTML, Javascript, Markdown, display
display(HTML('<b>bold output</b><script>{_mark(3)}</script><img src=x onerror="{_mark(4)}">'))
display(Javascript("{_mark(5)}"))
display(Markdown('<img src=x onerror="{_mark(6)}">'))
display({{"image/png": "not base64"}}, raw=True, metadata={{"image/png": {{"width": "1 onerror={_mark(7)}"}}}})
display({{"image/svg+xml": '<svg xmlns="http://www.w3.org/2000/svg" onload="{_mark(8)}"><script>{_mark(8)}</script></svg>'}},
        raw=True)
display(HTML('<iframe srcdoc="<script>{_mark(9, "parent")}</script>"></iframe>'))
"""


def grades(course):
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def squash(text):
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def course(graded_course, tmp_path_factory):
    """A private copy of the graded course (manual grades written here stay here), with the
    assignment released through the course exchange and a student's correct copy beside it."""
    course = tmp_path_factory.mktemp("browser") / "course"
    shutil.copytree(graded_course, course, symlinks=True)
    run_nbgrader("release_assignment", ASSIGNMENT, "--force", cwd=course)
    shutil.copytree(course / "submitted" / GRADED_STUDENT / ASSIGNMENT, course / "student" / ASSIGNMENT)
    write(course / "submitted" / MARKUP_STUDENT, good_notebook(take_along_axis_explanation=MARKUP_ANSWER,
                                                              act7_k_means_k2=after_act7(MARKUP_OUTPUTS)))
    result = run_module(course, "grade")
    assert result.returncode == 0, result.stdout + result.stderr
    return course


@pytest.fixture(scope="module")
def lab(course, tmp_path_factory):
    with jupyter_lab(course, tmp_path_factory.mktemp("jupyter")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return artefacts_dir(tmp_path_factory)


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    yield page
    page.close()


def test_formgrader_manual_grades_reach_grades_csv(course, lab, page, shots):
    before = grades(course)[GRADED_STUDENT]
    assert before["status"] == "needs_manual_grading", before
    page.goto(f"{lab}/formgrader/?token={TOKEN}")
    page.get_by_role("link", name="Manual Grading").wait_for()
    assert page.locator("#warning-exchange").count() == 0, page.locator("#warning-exchange").inner_text()
    assert page.locator(".alert-warning").count() == 0, page.locator(".alert-warning").all_inner_texts()
    page.screenshot(path=shots / "formgrader_1_manage_assignments.png")

    page.get_by_role("link", name="Manual Grading").click()
    page.get_by_role("link", name=ASSIGNMENT).click()
    page.get_by_role("link", name=NOTEBOOK[:-len(".ipynb")], exact=True).click()
    row = page.locator(f"xpath=//tr[.//a[contains(@class, 'name-shown') and normalize-space()='{GRADED_STUDENT}']]")
    row.locator("td.reveal").click()
    page.screenshot(path=shots / "formgrader_2_submissions.png")
    row.get_by_role("link", name=GRADED_STUDENT).click()
    page.locator(".pa2-rubric").first.wait_for()
    page.wait_for_load_state("networkidle")  # the grades and comments are loaded: inputs save

    manual = rubric_entries(course / "source" / ASSIGNMENT / NOTEBOOK)
    assert page.locator(".pa2-rubric").count() == len(manual), "a rubric under every manually graded cell"
    given = {entry.grade_id: entry.points for entry in manual}
    first = manual[0].grade_id
    given[first] -= 1  # one answer loses a point
    for grade_id, score in given.items():
        with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"):
            page.locator(f"input.score[id='{grade_id}']").fill(f"{score:g}")
            page.locator(f"input.score[id='{grade_id}']").blur()  # formgrader saves on change
    with page.expect_response(lambda r: "/formgrader/api/comment/" in r.url and r.request.method == "PUT"):
        page.locator(f"textarea[id='{first}-comment']").fill(COMMENT)
        page.locator(f"textarea[id='{first}-comment']").blur()
    page.locator(".pa2-rubric").first.evaluate("box => box.scrollIntoView({block: 'center'})")
    page.screenshot(path=shots / "formgrader_3_graded_with_rubric.png")

    result = run_module(course, "grade")
    assert result.returncode == 0, result.stdout + result.stderr
    after = grades(course)[GRADED_STUDENT]
    assert after["status"] == "graded", after
    assert float(after["score"]) == float(before["score"]) + sum(given.values()), (before, after)
    assert after["max_score"] == before["max_score"]
    with Gradebook(db_url(course)) as gb:
        notebook = gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, GRADED_STUDENT)
        assert {c.name: c.comment for c in notebook.comments}[first] == COMMENT


@pytest.mark.parametrize("path, passes", [
    (f"student/{ASSIGNMENT}/{NOTEBOOK}", True),    # a complete, correct copy
    (f"release/{ASSIGNMENT}/{NOTEBOOK}", False),   # the untouched release
])
def test_validate_button_in_jupyterlab(course, lab, page, shots, path, passes):
    name = "correct" if passes else "release"
    page.goto(f"{lab}/lab/workspaces/{name}/tree/{path}?token={TOKEN}")  # a fresh workspace each
    page.locator(".jp-RenderedMarkdown h1", has_text="Programming Assignment 2").wait_for(timeout=60_000)
    page.screenshot(path=shots / f"student_{name}_1_opened.png")
    page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
    outcome = page.locator(".validation-success, .validation-failed").first
    outcome.wait_for(timeout=VALIDATE_TIMEOUT_MS)
    page.screenshot(path=shots / f"student_{name}_2_validated.png")
    text = outcome.inner_text()
    if passes:
        assert "Success! Your notebook passes all the tests." in text
        return
    failed = outcome.locator("p", has_text="The following cell failed:")
    assert failed.count() >= 1, text
    graded = [c for c in nbformat.read(course / path, as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    first_lines = {c.source.splitlines()[0] for c in graded}
    tests = {c.source.splitlines()[0] for c in graded if not c.metadata.nbgrader.get("solution")}
    sources = outcome.locator("xpath=./div[p[normalize-space()='The following cell failed:']]"
                              "/following-sibling::div[1]/pre")
    shown = {block.strip().splitlines()[0] for block in sources.all_inner_texts()}
    assert sources.count() == failed.count(), text
    assert shown <= first_lines, f"not graded cells of the release: {shown - first_lines}"
    assert shown & tests, "no failing test cell is listed"


def test_feedback_page_shows_the_failed_checks(graded_course, page, shots):
    autograded = nbformat.read(graded_course / "autograded" / FEEDBACK_STUDENT / ASSIGNMENT / NOTEBOOK, as_version=4)
    messages = [squash(output.evalue) for cell in autograded.cells
                if cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata.nbgrader.get("solution")
                for output in cell.get("outputs", []) if output.output_type == "error"]
    assert messages, "the feedback student should fail some checks"
    page.goto((graded_course / "feedback" / FEEDBACK_STUDENT / ASSIGNMENT / "clustering.html").as_uri())
    text = squash(page.locator("body").inner_text())
    page.locator(".output_error").first.evaluate("error => error.scrollIntoView({block: 'center'})")
    page.screenshot(path=shots / "feedback.png")
    missing = [message for message in messages if message not in text]
    assert not missing, missing
    shown_notes = [e.grade_id for e in rubric_entries(graded_course / "source" / ASSIGNMENT / NOTEBOOK)
                   if e.notes and words(e.notes) in words(text)]
    assert page.locator(".pa2-rubric").count() == 0 and not shown_notes, "feedback shows the rubric"


def test_feedback_summary_comes_first_links_to_the_failed_cells_and_shows_hints(graded_course, browser, shots):
    """The seed transcript's feedback on a phone-sized screen, with JavaScript off and the network
    cut: the summary is above the notebook and fits the screen, a failed check's link brings its
    cell into view, and the likely mistake is shown in the summary and under the cell."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False)
    fetched = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                  else (fetched.append(route.request.url), route.abort()))
    page = context.new_page()
    try:
        page.goto((graded_course / "feedback" / FEEDBACK_STUDENT / ASSIGNMENT / "clustering.html").as_uri())
        summary, notebook = page.locator("#pa2-summary"), page.locator("#notebook").first  # nbgrader nests two
        assert summary.is_visible()
        top, below = summary.bounding_box(), notebook.bounding_box()
        assert top["y"] + top["height"] <= below["y"], (top, below)
        assert top["x"] >= 0 and top["x"] + top["width"] <= 390, f"the summary is wider than the phone: {top}"
        page.screenshot(path=shots / "feedback_summary_phone.png")
        hinted = summary.locator("ol.pa2-failed > li", has=page.locator(".pa2-hint"))
        assert hinted.count() >= 1, "no likely mistake shown in the summary"
        assert "Likely mistake:" in hinted.first.inner_text()
        link = hinted.first.locator("a").first
        grade_id = link.get_attribute("href").lstrip("#")
        link.click()
        assert page.url.endswith(f"#{grade_id}")
        anchor = page.locator(f'a[name="{grade_id}"]').bounding_box()
        # at the top of the view, give or take a fraction of a pixel of layout rounding
        assert anchor is not None and -1 <= anchor["y"] < 844, f"the cell {grade_id} is not in view: {anchor}"
        cell = page.locator(f'a[name="{grade_id}"] + div').locator(
            "xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' cell ')][1]")
        assert "Likely mistake:" in squash(cell.inner_text()), "the hint is not under the failed cell"
        page.screenshot(path=shots / "feedback_summary_link.png")
    finally:
        context.close()
    assert fetched == [], f"the feedback page fetched from the network: {fetched[:3]}"


def markup_ran(page):
    """What the student's markup ran on ``page``, once the images that fail to load have fired."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(500)
    return [PAYLOADS[n] for n in page.evaluate("window.__pa2_ran || []")]


def open_markup_submission(course, lab, page):
    """Sign in to formgrader as a grader (the page's calls of formgrader's API need it), then open
    the markup student's submission and wait for its rubric boxes."""
    with Gradebook(db_url(course)) as gb:
        submission = gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, MARKUP_STUDENT).id
    page.goto(f"{lab}/formgrader/?token={TOKEN}")
    page.get_by_role("link", name="Manual Grading").wait_for()
    page.goto(f"{lab}/formgrader/submissions/{submission}/")
    page.locator(".pa2-rubric").first.wait_for()


def test_a_students_markup_runs_no_script_in_formgrader(course, lab, page, shots):
    """A grader who opens a submission in formgrader runs none of its script (which could set
    scores through formgrader's API with the grader's session), and still reads the notebook:
    the instructions' headings, the student's answer as text, the figures, one rubric per
    manually graded cell (the student's forged rubric box is not one)."""
    open_markup_submission(course, lab, page)
    ran = markup_ran(page)
    page.screenshot(path=shots / "formgrader_student_markup.png")
    assert ran == [], f"expected none of the student's script to run in formgrader, got {ran}"
    assert page.locator("h1", has_text="Programming Assignment 2").count() == 1
    assert "Each row of indices picks one element of the same row of arr." in squash(page.locator("body").inner_text())
    assert page.locator("a[href^='javascript:' i]").count() == 0
    manual = rubric_entries(course / "source" / ASSIGNMENT / NOTEBOOK)
    assert page.locator(".pa2-rubric").count() == len(manual), "the student's forged rubric box looks like one"
    assert page.locator("img[src^='data:image/png']").count() >= 8, "the student's figures are missing"


def test_a_students_markup_runs_no_script_in_their_feedback(course, page):
    """The feedback page of that submission runs none of its script either, and shows its figures."""
    page.goto((course / "feedback" / MARKUP_STUDENT / ASSIGNMENT / "clustering.html").as_uri())
    ran = markup_ran(page)
    assert ran == [], f"expected none of the student's script to run in the feedback page, got {ran}"
    assert "Each row of indices picks one element of the same row of arr." in squash(page.locator("body").inner_text())
    assert page.locator("img[src^='data:image/png']").count() >= 8, "the student's figures are missing"


def test_full_credit_on_a_students_answer_scores_that_answer_alone(course, lab, page):
    """The grader gives the markup student's written answer full credit: that answer gets its
    points and no other cell any. A heading with a check's grade_id as its id, earlier in the
    page than the check's own score box, once made formgrader give the check full credit too."""
    open_markup_submission(course, lab, page)
    page.wait_for_load_state("networkidle")
    saved = []
    page.on("request", lambda r: saved.append(r.url) if "/formgrader/api/grade/" in r.url and r.method == "PUT" else None)
    answer = page.locator(".nbgrader_cell", has=page.locator("input.score[id='take_along_axis_explanation']"))
    with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"):
        answer.locator("button.full-credit").click()
    page.wait_for_load_state("networkidle")
    with Gradebook(db_url(course)) as gb:
        grades = {g.name: (g.manual_score, g.max_score) for g in
                  gb.find_submission_notebook(NOTEBOOK[:-len(".ipynb")], ASSIGNMENT, MARKUP_STUDENT).grades}
    manual, top = grades["take_along_axis_explanation"]
    assert manual == top, f"expected the answer's full {top} points, got {manual}"
    assert grades[HIJACKED][0] is None, \
        f"expected no manual score on {HIJACKED}, got {grades[HIJACKED][0]} ({len(saved)} grades saved)"
    assert len(saved) == 1, f"expected one grade saved, got {len(saved)}"
