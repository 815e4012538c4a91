"""Write graded students' feedback again from the gradebook: ``make feedback``, and after regrading.

``make grade`` writes feedback as it grades, from the automatic scores alone. Once the free
responses are graded in formgrader, ``make feedback`` writes ``feedback/<student>/pa2_clustering/``
again with nbgrader's own ``generate_feedback`` (the course's feedback preprocessors: no hidden
test code, failed checks cut to their message), so students see the manual scores and the
graders' comments. ``nbgrader release_feedback pa2_clustering`` then hands it out through the
exchange. A run of ``make grade`` that grades such a student again (``--force``, or a changed
submission) writes their page again the same way (:func:`write_again`), so it never goes back to
the automatic scores alone while the gradebook holds more.
"""
import sys
from pathlib import Path

from nbgrader.converters import GenerateFeedback

from . import ASSIGNMENT, ROOT
from .grade_one import last_error, run_converter
from .gradebook import course_config
from .nbgrader_cli import run_nbgrader


def write_again(root, url, student_ids):
    """Write the feedback of ``student_ids`` again in this process from the gradebook at ``url``,
    as ``make feedback`` does; return {student: why} for those it could not, whose page stays as it was."""
    if not student_ids:
        return {}
    config = course_config(root, url)
    failed = {}
    for student_id in student_ids:
        folder = Path(root) / "feedback" / student_id / ASSIGNMENT
        before = {path: path.read_bytes() for path in folder.rglob("*") if path.is_file()}
        ok, log = run_converter(GenerateFeedback, config, student_id)  # it empties the folder first
        if not ok:
            failed[student_id] = last_error(log)
            for path, content in before.items():  # the page written while grading stays
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
    return failed


def main():
    run_nbgrader("generate_feedback", ASSIGNMENT, "--force", cwd=ROOT)
    written = sorted((ROOT / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    print(f"wrote feedback for {len(written)} students in feedback/<student>/{ASSIGNMENT}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
