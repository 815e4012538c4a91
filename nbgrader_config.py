"""nbgrader configuration for the PA2 Clustering course repository.

The course root is this folder: source/, release/, submitted/, autograded/ and feedback/
sit beside this file. The gradebook is SQLite gradebook.db here unless PA2_DB_URL names another.
The `assignment.*` classes named below are the course tooling, which `make setup` installs in the
venv (pyproject.toml), so nbgrader finds them wherever it runs.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

c.CourseDirectory.root = HERE
c.CourseDirectory.course_id = "pa2_clustering_course"
c.CourseDirectory.assignment_id = ""
# The gradebook: SQLite gradebook.db here, or a PostgreSQL server named by PA2_DB_URL
# (`make grade DB=postgresql://...`), for the grader, formgrader and every export alike.
c.CourseDirectory.db_url = os.environ.get("PA2_DB_URL") or f"sqlite:///{os.path.join(HERE, 'gradebook.db')}"
# The exchange that `nbgrader release_assignment` / `fetch_assignment` / `submit` / `collect` use,
# without JupyterHub: exchange/ in the course (`make exchange` creates it, world-writable as
# nbgrader wants). On a shared JupyterHub set PA2_EXCHANGE=/srv/nbgrader/exchange instead.
c.Exchange.root = os.environ.get("PA2_EXCHANGE") or os.path.join(HERE, "exchange")

# Per-cell time limit when validating and autograding. The whole reference notebook runs in
# under 10 s; a cell that needs a minute is looping over data points or stuck, and is
# interrupted so that the rest of the notebook is still graded.
c.Execute.timeout = 60
c.Execute.interrupt_on_timeout = True
# nbconvert checks the whole notebook against the nbformat schema after each of nbgrader's passes
# (about 20 per submission); once, after the last pass, still refuses an invalid notebook.
c.Exporter.optimistic_validation = True

# Keep autograded notebooks small even when a submission prints without end: nbgrader's
# LimitOutput counts lines, TruncateLongOutputs also cuts long single lines. Execution records
# the cell it runs, so that a cell that kills the kernel can be named and left out.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50
# nbgrader's lists, with CheckCellMetadata checking each distinct cell once per process (it
# costs 0.15 s a notebook otherwise; assignment.preprocessors.CheckCellMetadataOnce)
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "assignment.preprocessors.CheckCellMetadataOnce",
]
c.Autograde.autograde_preprocessors = [
    "assignment.preprocessors.ExecuteRecordingProgress",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "assignment.preprocessors.TruncateLongOutputs",
    "assignment.gradebook.SaveAutoGradesAtOnce",
    "nbgrader.preprocessors.AssignLatePenalties",
    "assignment.preprocessors.CheckCellMetadataOnce",
]

# Feedback shows each failed check's message, never the hidden test code: hidden regions are
# removed and tracebacks of test cells cut down to their last line (the check's message). At the
# top of the page, the summary (assignment/summary.py): score, points per part, every failed check
# with its message and likely mistake, from the grades GetGrades reads (so `make feedback` after
# grading by hand shows the manual scores and comments).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "nbgrader.preprocessors.ClearHiddenTests",
    "assignment.preprocessors.ShortenTestTracebacks",
    "assignment.summary.FeedbackSummary",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# The same pages as nbconvert's HTMLExporter, without its second parse of each page (40% of the
# export; assignment/exporters.py says why that is safe for the feedback template), with the
# course's feedback template: nbgrader's, with the summary on top (assignment/templates/pa2_feedback).
c.GenerateFeedback.exporter_class = "assignment.exporters.FeedbackHTMLExporter"
c.FeedbackHTMLExporter.template_name = "pa2_feedback"

# A submission's markdown and outputs are the student's, and formgrader shows them to a grader who
# is signed in: every HTML page of a notebook (formgrader's and the feedback's) keeps only inert
# markup, with an allowlist that keeps the instructions readable (assignment/safe_html.py says why
# nbconvert's own sanitizing is not enough).
c.HTMLExporter.sanitize_html = True
c.HTMLExporter.filters = {"clean_html": "assignment.safe_html.clean_html",
                          "markdown2html": "assignment.safe_html.SafeMarkdown",
                          "strip_files_prefix": "assignment.safe_html.strip_files_prefix"}
# Formgrader shows the source's model answer and grading notes under each manually graded cell.
# ShowRubric acts only on formgrader's "formgrade" template, never on feedback (template "feedback").
c.HTMLExporter.preprocessors = ["assignment.safe_html.InertOutputs", "assignment.rubric.ShowRubric"]
