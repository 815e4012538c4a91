"""The summary a student reads first: the score, the points per part, and every failed check.

:func:`summarise` reads a graded notebook (the autograded notebook with its scores: after
nbgrader's ``GetGrades`` they are in each cell's metadata, or given from the gradebook) and
returns a :class:`Summary`: the score, the automatic and the manual points (or that the manual
ones are still to come), one :class:`Part` per part of the assignment (Act 1A to Act 10 from the
notebook's headings, and each answer graded by hand), and one :class:`Check` per failed check in
notebook order, with its name in words (the test cell's one-line docstring), its message and the
likely mistake (``assignment.hints``) when one was recognised.

The same summary goes everywhere the student's result goes: :class:`FeedbackSummary` (an nbconvert
preprocessor, registered for nbgrader's GenerateFeedback in ``nbgrader_config.py``) puts its HTML at
the top of every feedback page, for ``make grade`` and ``make feedback`` alike; the Moodle export's
feedback column uses :func:`short_lines`; the class report counts the hints.
"""
import html
import re
from dataclasses import dataclass, field

from nbconvert.preprocessors import Preprocessor
from nbgrader.api import Gradebook
from traitlets import Bool

from .hints import hint_of

#: The key of the summary's HTML in nbconvert's resources (the feedback template shows it).
RESOURCE = "pa2_summary"


@dataclass
class Check:
    """A failed check: its cell, its name in words, its message, points, the likely mistake."""
    grade_id: str
    name: str
    message: str
    score: float
    points: float
    hint: str = ""
    hint_id: str = ""


@dataclass
class Part:
    """A part of the assignment: its automatic checks together, or one answer graded by hand."""
    name: str
    anchor: str
    earned: float = 0.0
    possible: float = 0.0
    manual: bool = False
    pending: bool = False  # graded by hand, not yet
    comment: str = ""


@dataclass
class Summary:
    parts: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    late_penalty: float = 0.0

    def _points(self, manual):
        parts = [p for p in self.parts if p.manual == manual]
        return sum(p.earned for p in parts if not p.pending), sum(p.possible for p in parts)

    @property
    def automatic(self):
        """(points earned, points possible) of the automatic checks."""
        return self._points(False)

    @property
    def by_hand(self):
        """(points earned so far, points possible) of the answers graded by hand."""
        return self._points(True)

    @property
    def pending(self):
        """Points of answers still to be graded by hand."""
        return sum(p.possible for p in self.parts if p.pending)

    @property
    def score(self):
        return self.automatic[0] + self.by_hand[0] - self.late_penalty

    @property
    def max_score(self):
        return self.automatic[1] + self.by_hand[1]


def _nbgrader(cell):
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def part_name(heading):
    """The part a markdown heading starts ("Act 4", "Act 1A", "Simulated data"), or None."""
    text = heading.lstrip("#").strip()
    found = re.match(r"Act (\d+)\b", text) or re.match(r"(\d+[A-Z]):", text)
    if found:
        return f"Act {found.group(1)}"
    if text.startswith("Experiments with "):
        return text[len("Experiments with "):].replace("images of ", "").capitalize()
    return text.split(":")[0].strip("` ") or None


def check_name(source):
    """A test cell's name in words: its one-line docstring, without "Hidden: " and the final full stop."""
    first = source.lstrip().split("\n", 1)[0].strip()
    first = first.strip('"').strip("'").strip()
    return re.sub(r"^(Hidden|Visible check): ", "", first).rstrip(".").strip() or "a check"


def _message(cell):
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            name, value = output.get("ename", "Error"), output.get("evalue", "")
            return f"{name}: {value}" if value else name
    return "no points (no message)"


def summarise(nb, scores=None, comments=None, late_penalty=0.0):
    """The :class:`Summary` of the graded notebook ``nb``.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        The autograded notebook.
    scores : dict, optional
        grade_id -> (score, max_score), score None while an answer waits for a manual grade. By
        default, each cell's ``metadata.nbgrader`` ``score`` and ``points`` (nbgrader's GetGrades).
    comments : dict, optional
        grade_id -> the grader's comment; by default ``metadata.nbgrader.comment``.
    late_penalty : float
        Points taken off for a late submission.
    """
    summary, part, heading_part = Summary(late_penalty=late_penalty), None, None
    by_name = {}
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if cell.get("cell_type") == "markdown":
            for line in cell.get("source", "").splitlines():
                if re.match(r"#{1,2} ", line) and part_name(line):
                    heading_part = part_name(line)
        grade_id = meta.get("grade_id")
        if not meta.get("grade") or not grade_id:
            continue
        if scores is not None:
            score, points = scores.get(grade_id, (None, meta.get("points") or 0))
        else:
            score, points = meta.get("score"), meta.get("points") or 0
        if not points:
            continue
        comment = (comments.get(grade_id) if comments is not None else meta.get("comment")) or ""
        name = heading_part or "The notebook"
        if meta.get("solution") or meta.get("task"):  # graded by hand: a row of its own
            label = f"{name}: " + ("plot, graded by hand" if cell.get("cell_type") == "code" else "free response")
            same = [p for p in summary.parts if p.name.rstrip(" 0123456789") == label]
            if len(same) == 1:
                same[0].name = label + " 1"
            part = Part(label + (f" {len(same) + 1}" if same else ""), grade_id, possible=points,
                        manual=True, pending=score is None, earned=score or 0, comment=comment)
            summary.parts.append(part)
            continue
        if name not in by_name:
            by_name[name] = Part(name, grade_id)
            summary.parts.append(by_name[name])
        part = by_name[name]
        part.possible += points
        part.earned += score or 0
        if score is None or score < points:
            hint = hint_of(cell)
            summary.failed.append(Check(grade_id, check_name(cell.get("source", "")), _message(cell),
                                        score or 0, points, hint[1] if hint else "", hint[0] if hint else ""))
    return summary


def _points(value):
    return f"{value:g}"


def plural(count, word):
    """``count`` ``word``s, or one ``word`` when ``count`` is 1 (``3 cells``, ``1 point``)."""
    return f"{count:g} {word}" + ("" if count == 1 else "s")


def _code(text):
    """HTML of ``text`` with its `backticked` parts as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


CSS = """
#pa2-summary{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:15px;line-height:1.45;
  max-width:60em;margin:0 auto 1.5em;padding:1em;border:2px solid #337ab7;border-radius:6px;color:#222;background:#fff}
#pa2-summary h2{font-size:1.4em;margin:0 0 .3em}#pa2-summary h3{font-size:1.15em;margin:1.2em 0 .4em}
#pa2-summary p{margin:.3em 0}#pa2-summary table{border-collapse:collapse;width:100%;max-width:34em}
#pa2-summary th,#pa2-summary td{border-bottom:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
#pa2-summary td.points,#pa2-summary th.points{text-align:right;white-space:nowrap}
#pa2-summary .lost{color:#a94442;font-weight:bold}#pa2-summary .comment{font-size:.9em;color:#555}
#pa2-summary ol{padding-left:1.4em}#pa2-summary li{margin:.6em 0}
#pa2-summary .message{display:block;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;
  overflow-wrap:anywhere;word-break:break-word;background:#f7f7f7;padding:.25em .4em;margin:.2em 0}
#pa2-summary .pa2-hint,.pa2-hint{border-left:4px solid #f0ad4e;background:#fcf8e3;padding:.3em .5em;margin:.3em 0}
#toc{display:none}
@media (max-width:600px){#pa2-summary{font-size:16px;padding:.6em;border-width:1px}}
@media print{#pa2-summary{border:1px solid #000;page-break-after:always}#pa2-summary a{color:#000;text-decoration:none}
  #pa2-summary .message,#pa2-summary .pa2-hint{background:none}}
"""


def render_html(summary):
    """The summary as an HTML section (its own style, no script, nothing fetched)."""
    auto, by_hand = summary.automatic, summary.by_hand
    if not summary.pending:
        manual = f"answers graded by hand: {_points(by_hand[0])} of {plural(by_hand[1], 'point')}"
    elif summary.pending == by_hand[1]:
        manual = f"answers graded by hand: {plural(summary.pending, 'point')} still to come"
    else:
        manual = (f"answers graded by hand: {_points(by_hand[0])} of the {plural(by_hand[1] - summary.pending, 'point')} "
                  f"graded so far, {plural(summary.pending, 'point')} still to come")
    parts = [f'<section id="pa2-summary" aria-label="Summary"><style>{CSS}</style>',
             f"<h2>Score: {_points(summary.score)} of {_points(summary.max_score)} points</h2>",
             f"<p>Automatic checks: {_points(auto[0])} of {plural(auto[1], 'point')}; {manual}.</p>"]
    if summary.late_penalty:
        parts.append(f"<p>Late submission: {_points(summary.late_penalty)} points taken off.</p>")
    parts.append('<h3>Points per part</h3><table class="pa2-parts"><thead><tr><th>Part</th>'
                 '<th class="points">Points</th></tr></thead><tbody>')
    for part in summary.parts:
        points = ("to come" if part.pending else _points(part.earned)) + f" / {_points(part.possible)}"
        lost = ' class="points lost"' if not part.pending and part.earned < part.possible else ' class="points"'
        comment = f'<div class="comment">Comment: {html.escape(part.comment)}</div>' if part.comment else ""
        parts.append(f'<tr><td><a href="#{html.escape(part.anchor)}">{html.escape(part.name)}</a>{comment}</td>'
                     f"<td{lost}>{points}</td></tr>")
    parts.append("</tbody></table>")
    if summary.failed:
        parts.append(f"<h3>Checks that failed ({len(summary.failed)}), in notebook order</h3><ol class=\"pa2-failed\">")
        for check in summary.failed:
            hint = (f'<div class="pa2-hint"><strong>Likely mistake:</strong> {_code(check.hint)}</div>'
                    if check.hint else "")
            parts.append(f'<li><a href="#{html.escape(check.grade_id)}">{_code(check.name)}</a> '
                         f"({_points(check.score)} of {plural(check.points, 'point')})"
                         f'<span class="message">{html.escape(check.message)}</span>{hint}</li>')
        parts.append("</ol>")
    else:
        parts.append("<p>Every automatic check passed.</p>")
    parts.append("<p>The notebook follows, with each check's message under its cell.</p></section>")
    return "\n".join(parts)


def short_lines(summary, limit=160):
    """One line per failed check, shortened: its name, its message and the likely mistake."""
    lines = []
    for check in summary.failed:
        message = check.message.removeprefix("CheckFailed: ")
        message = message if len(message) <= limit else message[:limit - 3].rstrip() + "..."
        lines.append(f"{check.name}: {message}" + (f" Likely mistake: {check.hint.replace('`', '')}" if check.hint else ""))
    return lines


class FeedbackSummary(Preprocessor):
    """Put the summary of the graded notebook into the resources, for the feedback template.

    Runs in nbgrader's GenerateFeedback, after ``GetGrades``: it reads the scores, which answers
    still wait for a grader, and the graders' comments from the gradebook, so that ``make grade``
    and ``make feedback`` show the grades of the moment.
    """

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader") or {}
        scores = comments = None
        if info.get("db_url"):  # which answers still wait for a grader is in the gradebook only
            with Gradebook(info["db_url"]) as gb:
                graded = gb.find_submission_notebook(info["notebook"], info["assignment"], info["student"])
                scores = {g.name: (None if g.needs_manual_grade else g.score, g.max_score) for g in graded.grades}
                comments = {c.name: c.comment for c in graded.comments}
        resources[RESOURCE] = render_html(summarise(nb, scores, comments, info.get("late_penalty") or 0))
        return nb, resources
