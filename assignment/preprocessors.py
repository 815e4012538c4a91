"""nbgrader preprocessors of this course: shorter outputs, feedback without hidden code, and
execution that records its progress."""
import json
import os

from nbconvert.preprocessors import Preprocessor
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer


class ShortenTestTracebacks(Preprocessor):
    """Cut the traceback of every error in an autograder test cell down to its last line.

    IPython tracebacks quote the lines of the cell that raised, which for a hidden test
    would show the hidden code. The last line (``CheckFailed: expected ..., got ...``)
    is the message meant for the student. Used when generating feedback.
    """

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources


class TruncateLongOutputs(Preprocessor):
    """Cut any output of a cell to ``max_chars`` characters, so a flood of printing (even on
    one line, which nbgrader's line-based LimitOutput lets through) cannot bloat the
    autograded notebook. Used when autograding, after execution."""

    enabled = Bool(True).tag(config=True)
    max_chars = Integer(20000, help="characters kept of each text output").tag(config=True)

    def _cut(self, text):
        if len(text) <= self.max_chars:
            return text
        return text[:self.max_chars] + f"\n... [{len(text) - self.max_chars} more characters cut by the grader]\n"

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                output.text = self._cut(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                for mime, value in output.get("data", {}).items():
                    if mime.startswith("text/") and isinstance(value, str):
                        output.data[mime] = self._cut(value)
            elif output.output_type == "error":
                output.evalue = self._cut(output.evalue)
                output.traceback = [self._cut(line) for line in output.traceback[-50:]]
        return cell, resources


class ExecuteRecordingProgress(Execute):
    """nbgrader's Execute that writes which cell it is about to run to ``$PA2_PROGRESS_FILE``.

    When the kernel dies, nbgrader only says so; this file says which cell killed it, so the
    grader can grade the notebook again without that cell (``assignment.grade``).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.on_cell_execute = self._record_progress

    def _record_progress(self, cell, cell_index):
        path = os.environ.get("PA2_PROGRESS_FILE")
        if path:
            with open(path, "w") as handle:
                json.dump({"index": cell_index, "id": cell.get("id"),
                           "grade_id": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")}, handle)
