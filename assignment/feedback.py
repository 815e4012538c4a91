"""An nbgrader feedback preprocessor that hides the hidden tests' code from students."""
from nbconvert.preprocessors import Preprocessor
from nbgrader import utils
from traitlets import Bool


class ShortenTestTracebacks(Preprocessor):
    """Cut the traceback of every error in an autograder test cell down to its last line.

    IPython tracebacks quote the lines of the cell that raised, which for a hidden test
    would show the hidden code. The last line (``CheckFailed: expected ..., got ...``)
    is the message meant for the student.
    """

    enabled = Bool(True, help="nbconvert preprocessors are off unless enabled").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
