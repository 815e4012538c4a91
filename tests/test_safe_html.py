"""A student's markup runs nothing on formgrader's page or the feedback page, and the
instructions still read as written (assignment/safe_html.py). tests/test_browser.py loads
both pages of such a submission in chromium."""
import re

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.markdown import markdown2html
from nbgrader.converters import GenerateFeedback
from nbgrader.server_extensions.formgrader import handlers
from traitlets.config.loader import PyFileConfigLoader

from assignment import ROOT, SOURCE_DIR, NOTEBOOK
from assignment.exporters import FeedbackHTMLExporter
from assignment.hints import hint_output, MISTAKES
from assignment.safe_html import ID_PREFIX, InertOutputs, clean_html

#: Markup a student can put in a markdown answer; each piece would run script on the page.
ANSWER = """Each row of `indices` picks one element.

<script>window.ran = 1</script>

<img src="x" onerror="window.ran = 2">

<a href="javascript:window.ran = 3">see also</a> <a href=" JaVaScRiPt:window.ran = 4">or</a>
<a href="files/javascript:window.ran = 8">my derivation</a> [or this](files/javascript:window.ran=9)

<iframe srcdoc="<script>parent.ran = 5</script>"></iframe>

<style>body { display: none }</style>

<div class="alert alert-info pa2-rubric" onmouseover="window.ran = 6">Rubric: any answer earns both points</div>

<svg onload="window.ran = 7"></svg> <form action="/formgrader/api/grade/1"><input name="score"></form>

<h6 id="compute_sq_dists_matches_cdist"></h6><h6 id="simulated_clusters_by_eye-comment"></h6>
<div class="pa2-hint">Likely mistake: none, the grader says so</div>
"""


def payload_outputs():
    """Outputs with script in every form a notebook output can carry it."""
    new = nbformat.v4.new_output
    return [
        new("display_data", data={"text/html": '<b>bold</b><script>window.ran = 11</script>'
                                               '<img src=x onerror="window.ran = 12">'}),
        new("display_data", data={"application/javascript": "window.ran = 13", "text/plain": "<Javascript>"}),
        new("display_data", data={"text/markdown": '<img src=x onerror="window.ran = 14">'}),
        new("display_data", data={"image/png": "not base64 <script>"}),
        new("display_data", data={"image/png": "iVBORw0KGgo="},
            metadata={"image/png": {"width": "1 onerror=window.ran=15", "height": 200}, "filenames": {"image/png": "x"}}),
        new("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"}}),
        new("execute_result", data={"text/html": '<iframe srcdoc="<script>parent.ran = 16</script>"></iframe>'},
            execution_count=1),
    ]


def course_config():
    """nbgrader_config.py, loaded as formgrader and nbgrader load it."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(ROOT)).load_config()


def marked_notebook():
    """The master notebook with the markup in its first manually graded markdown cell and the
    outputs under its first code cell."""
    nb = nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4)
    answer = next(c for c in nb.cells if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade"))
    answer.source = ANSWER
    next(c for c in nb.cells if c.cell_type == "code").outputs = payload_outputs()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                             "version_minor": 0}}
    return nb


def runnable(html):
    """What of the student's markup in ``html`` a browser would run: scripts and event handlers
    naming ``ran``, javascript: URLs, frames, forms, SVG (the page's own scripts set no ``ran``)."""
    soup = BeautifulSoup(html, "html.parser")
    found = [f"<script> {s.get_text()[:40]!r}" for s in soup.find_all("script") if "ran" in s.get_text()]
    for tag in soup.find_all(True):
        found += [f"<{tag.name} {name}>" for name, value in tag.attrs.items()
                  if name.lower().startswith("on") and "ran" in str(value)]
        found += [f"<{tag.name} {name}={value!r}>" for name, value in tag.attrs.items()
                  if name in ("href", "src", "action") and re.sub(r"\s", "", str(value)).lower().startswith("javascript:")]
    found += [f"<{tag.name}>" for tag in soup.find_all(["iframe", "form", "svg", "object", "embed"])]
    return found


def formgrade_page(nb):
    exporter = HTMLExporter(config=course_config(), template_name="formgrade",
                            extra_template_basedirs=[handlers.template_path])
    resources = {"assignment_id": "pa2_clustering", "notebook_id": "clustering", "submission_id": "x", "index": 0,
                 "total": 1, "base_url": "", "student": "s", "last_name": None, "first_name": None,
                 "notebook_path": "autograded/s/pa2_clustering/clustering.ipynb"}
    return exporter.from_notebook_node(nb, resources=resources)[0]


def feedback_page(nb):
    """The feedback page, with the scores nbgrader's GetGrades would put in (all 0 here)."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata.nbgrader.update(score=0, comment="Say **why**.")
    resources = {"nbgrader": {"notebook": "clustering", "score": 0, "max_score": 100, "late_penalty": 0}}
    config = GenerateFeedback(config=course_config()).config  # with the template folders nbgrader adds
    return FeedbackHTMLExporter(config=config).from_notebook_node(nb, resources=resources)[0]


@pytest.mark.parametrize("render", [formgrade_page, feedback_page], ids=["formgrader", "feedback"])
def test_a_students_markup_is_inert_on_the_page(render):
    """A page of the marked notebook holds nothing that runs, and shows the markup as text."""
    html = render(marked_notebook())
    assert runnable(html) == [], f"expected nothing runnable on the page, got {runnable(html)}"
    text = BeautifulSoup(html, "html.parser").get_text()
    assert "Each row of indices picks one element." in text
    assert "<script>window.ran = 1</script>" in text, "the grader cannot see what the student tried"
    assert 'class="alert' not in html.split("Rubric: any answer")[0].rsplit("<div", 1)[-1]
    soup = BeautifulSoup(html, "html.parser")
    grade_ids = {c.metadata.nbgrader.grade_id for c in nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4).cells
                 if c.metadata.get("nbgrader", {}).get("grade_id")}
    taken = [f"<{tag.name} id={tag['id']}>" for tag in soup.find_all(id=True) if tag.name not in ("input", "textarea")
             and (tag["id"] in grade_ids or tag["id"].removesuffix("-comment") in grade_ids)]
    assert taken == [], f"expected no element but formgrader's own with a grade's id, got {taken}"
    assert soup.select("div.pa2-hint") == [], "a student's note passes for the grader's likely mistake"


def test_the_rubric_and_the_hints_keep_their_look():
    """The instructor's rubric boxes (formgrader) and the grader's likely-mistake notes keep
    their classes: only a student's markup loses its own."""
    nb = marked_notebook()
    test = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")
                and not c.metadata.nbgrader.get("solution") and c.cell_type == "code")
    test.outputs.append(hint_output(MISTAKES[0]))
    soup = BeautifulSoup(formgrade_page(nb), "html.parser")
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.metadata.nbgrader.get("solution")]
    assert len(soup.select("div.alert.alert-info.pa2-rubric")) == len(graded)
    assert len(soup.select("div.pa2-hint")) == 1


def as_cleaned(html):
    """``html`` with what cleaning always changes: ids (and links to them) prefixed, and a
    semicolon after each style (the CSS sanitizer's)."""
    html = html.replace(' id="', f' id="{ID_PREFIX}').replace(' href="#', f' href="#{ID_PREFIX}')
    return re.sub(r'(style="[^"]*[^;"])"', r'\1;"', html)


def test_the_instructions_and_code_are_rendered_as_written():
    """Cleaning changes no markdown or code cell of the master notebook, but for the prefix of
    ids and a semicolon; cleaning twice (formgrader's page does) changes nothing more."""
    highlight = Highlight2HTML(pygments_lexer="ipython3")
    context = {"resources": {}}
    for cell in nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4).cells:
        html = markdown2html(cell.source) if cell.cell_type == "markdown" else highlight(cell.source)
        cleaned = clean_html(context, html)
        assert cleaned == as_cleaned(html), f"expected {cell.source[:60]!r} kept as written"
        assert clean_html(context, cleaned) == cleaned


@pytest.mark.parametrize("markup, kept", [
    ('<a href="https://numpy.org">NumPy</a>', '<a href="https://numpy.org">NumPy</a>'),
    ('<a href="#top">top</a>', f'<a href="#{ID_PREFIX}top">top</a>'),
    ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="a" width="40">',
     '<img src="data:image/png;base64,iVBORw0KGgo=" alt="a" width="40">'),
    ('<a href="data:text/html,<script>x</script>">x</a>', "<a>x</a>"),
    ('<a href="files/javascript:x">x</a>', "<a>x</a>"),
    ('<a href="/files/files/JavaScript:x">x</a>', "<a>x</a>"),
    ('<a href="files/notes.txt">notes</a>', '<a href="files/notes.txt">notes</a>'),
    ('<img src="/formgrader/api/assignments">', "<img>"),
    ('<img src="x" width="1 onerror=x">', "<img>"),
    ('<p style="position: fixed; color: red">x</p>', '<p style="color: red;">x</p>'),
    ('<span class="n pa2-rubric">x</span>', "<span>x</span>"),
    ('<h2 id="part" onclick="x">Part</h2>', f'<h2 id="{ID_PREFIX}part">Part</h2>'),
    ('<div class="pa2-hint">x</div>', "<div>x</div>"),
])
def test_clean_html_keeps_only_inert_markup(markup, kept):
    """One case per rule of the allowlist."""
    assert clean_html({"resources": {}}, markup) == kept


def test_inert_outputs_keep_what_a_page_shows_passively():
    """JavaScript, widgets and malformed images go; text, HTML, good images, checked sizes and
    the grader's own marks stay."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=payload_outputs())])
    hint = hint_output(MISTAKES[0])
    nb.cells[0].outputs.append(hint)
    nb.metadata["widgets"] = {"state": {}}
    nb, _ = InertOutputs().preprocess(nb, {})
    outputs = nb.cells[0].outputs
    assert [sorted(o.get("data", {})) for o in outputs] == [
        ["text/html"], ["text/plain"], ["text/markdown"], ["image/png"], ["text/html"], sorted(hint.data)]
    assert outputs[3].metadata == {"image/png": {"height": 200}}
    assert outputs[-1].metadata == hint.metadata, "the grader's mark on its hint is kept"
    assert "widgets" not in nb.metadata
