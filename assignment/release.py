"""Build the student release from the master notebook and check it both ways.

Steps: the simulated data in source/ matches its generator; ``nbgrader generate_assignment``
writes release/; ``nbgrader validate`` passes on the source (the solutions pass every test)
and fails on the release (the stubs pass none).
"""
import sys

from . import ASSIGNMENT, NOTEBOOK, RELEASE_DIR, SOURCE_DIR, data
from .nbgrader_cli import run_nbgrader

VALIDATION_SUCCESS = "Success! Your notebook passes all the tests."


def validate(notebook):
    """Run ``nbgrader validate`` on ``notebook``; return (passed, nbgrader's report)."""
    result = run_nbgrader("validate", str(notebook), check=False)
    report = result.stdout + result.stderr
    return VALIDATION_SUCCESS in report, report


def generate_release():
    """Write release/ from source/ with ``nbgrader generate_assignment``."""
    run_nbgrader("generate_assignment", ASSIGNMENT, "--force")


def build_release():
    """Check the data, generate the release and validate both notebooks; raise on a problem."""
    if data.main(["--check"]) != 0:
        raise SystemExit("the simulated data is stale: run `python -m assignment.data`")
    generate_release()
    print(f"generated {RELEASE_DIR.relative_to(RELEASE_DIR.parent.parent)}")
    passed, report = validate(SOURCE_DIR / NOTEBOOK)
    if not passed:
        raise SystemExit(f"the master notebook fails its own tests:\n{report}")
    print("nbgrader validate: the source passes every test")
    passed, report = validate(RELEASE_DIR / NOTEBOOK)
    if passed:
        raise SystemExit(f"the release passes its tests without any answer:\n{report}")
    print("nbgrader validate: the release fails its tests, as an unanswered notebook should")


if __name__ == "__main__":
    sys.exit(build_release())
