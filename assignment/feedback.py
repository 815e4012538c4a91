"""Write every graded student's feedback again from the gradebook: ``make feedback``.

``make grade`` writes feedback as it grades, when only the automatic scores exist. Once the
free responses are graded in formgrader, this writes ``feedback/<student>/pa2_clustering/``
again with nbgrader's own ``generate_feedback`` (the course's feedback preprocessors: no
hidden test code, failed checks cut to their message), so students see the manual scores and
the graders' comments. ``nbgrader release_feedback pa2_clustering`` then hands it out through
the exchange.
"""
import sys

from . import ASSIGNMENT, ROOT
from .nbgrader_cli import run_nbgrader


def main():
    run_nbgrader("generate_feedback", ASSIGNMENT, "--force", cwd=ROOT)
    written = sorted((ROOT / "feedback").glob(f"*/{ASSIGNMENT}/*.html"))
    print(f"wrote feedback for {len(written)} students in feedback/<student>/{ASSIGNMENT}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
