"""Build the example submissions in submitted/ from the release and answer files.

Each ``examples/<student_id>.cells`` file holds one student's answers: blocks that start with
a line ``### cell: <grade_id>`` and replace the source of the release cell with that
``grade_id``. Cells not named keep the release's content, so an empty file gives the untouched
release. The notebook goes to ``submitted/<student_id>/pa2_clustering/clustering.ipynb``.
"""
import argparse
import re
import sys

import nbformat

from . import ASSIGNMENT, NOTEBOOK, RELEASE_DIR, ROOT, SUBMITTED_DIR

EXAMPLES_DIR = ROOT / "examples"
CELL_MARKER = re.compile(r"^### cell: (\S+)\s*$")


def parse_answers(text):
    """Map grade_id -> cell source from the text of a ``.cells`` file."""
    answers, current, lines = {}, None, []
    for line in text.splitlines():
        match = CELL_MARKER.match(line)
        if match:
            if current is not None:
                answers[current] = "\n".join(lines).strip("\n")
            current, lines = match.group(1), []
            if current in answers:
                raise ValueError(f"cell {current} is answered twice")
        elif current is not None:
            lines.append(line)
    if current is not None:
        answers[current] = "\n".join(lines).strip("\n")
    return answers


def fill_release(answers, release_notebook=RELEASE_DIR / NOTEBOOK):
    """Return the release notebook with the cells named in ``answers`` replaced."""
    nb = nbformat.read(release_notebook, as_version=4)
    by_id = {cell.metadata.get("nbgrader", {}).get("grade_id"): cell for cell in nb.cells}
    unknown = sorted(set(answers) - set(by_id))
    if unknown:
        raise KeyError(f"no cell with grade_id {', '.join(unknown)} in {release_notebook}")
    for grade_id, source in answers.items():
        by_id[grade_id].source = source
    return nb


def example_files():
    return sorted(EXAMPLES_DIR.glob("*.cells"))


def submission_path(student_id, submitted_dir=SUBMITTED_DIR):
    return submitted_dir / student_id / ASSIGNMENT / NOTEBOOK


def render(answers_file):
    """The submitted notebook for one answers file, as the JSON text written to disk."""
    nb = fill_release(parse_answers(answers_file.read_text()))
    return nbformat.writes(nb) + "\n"


def stale_examples():
    """Example submissions in submitted/ that differ from a fresh build."""
    return [f.stem for f in example_files()
            if not submission_path(f.stem).exists()
            or submission_path(f.stem).read_text() != render(f)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale examples")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_examples()
        for name in stale:
            print(f"submitted/{name} is stale: run `python -m assignment.examples`")
        return 1 if stale else 0
    for answers_file in example_files():
        path = submission_path(answers_file.stem)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(answers_file))
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
