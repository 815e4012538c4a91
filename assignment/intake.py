"""Find, read and repair a submitted notebook before nbgrader grades it.

nbgrader restores the code of test cells it can find by ``grade_id``, but it cannot grade a
notebook whose test cells were deleted, whose nbgrader metadata was stripped, whose cells
changed type, or that does not parse. ``prepare_submission`` turns all of these into either a
repaired copy to grade (with notes saying what was repaired) or a reason, for a person, why the
submission cannot be graded.
"""
import copy
import difflib
import json
import re
import shutil
import warnings
from dataclasses import dataclass, field

import nbformat

from . import ASSIGNMENT, NOTEBOOK, RELEASE_DIR


class SubmissionProblem(Exception):
    """A submission that cannot be graded; the message says why, for a person."""


@dataclass
class Repair:
    notebook: object
    notes: list = field(default_factory=list)


def nbgrader_meta(cell):
    """The cell's nbgrader metadata: a dict, empty when it has none (or something else there)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def grade_id(cell):
    """The cell's grade_id: a string, or None."""
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_test_cell(cell):
    """Whether ``cell`` is a test cell (graded, not the student's to write): only the grader
    writes its outputs."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade")) and not meta.get("solution")


def is_student_cell(meta):
    """Cells whose content the student writes (solutions, and cells without nbgrader metadata)."""
    return not meta or meta.get("solution") or not (meta.get("locked") or meta.get("grade"))


#: How a surrogate can be in a notebook read as UTF-8: written as a JSON escape (a pair, or alone).
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _without_lone_surrogates(value):
    """``value`` (parsed JSON) with each lone surrogate of its strings replaced by "?"."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_without_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def read_submission(folder):
    """Read ``folder/pa2_clustering/clustering.ipynb`` or raise SubmissionProblem."""
    assignment_dir = folder / ASSIGNMENT
    path = assignment_dir / NOTEBOOK
    if not path.exists():
        others = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.ipynb")
                        if ".ipynb_checkpoints" not in p.parts)
        if others:
            raise SubmissionProblem(f"no {ASSIGNMENT}/{NOTEBOOK}; found {', '.join(others)} instead "
                                    f"(the notebook must keep its name)")
        raise SubmissionProblem(f"no {ASSIGNMENT}/{NOTEBOOK} in the submission")
    raw = path.read_bytes()
    if not raw.strip():
        raise SubmissionProblem(f"{NOTEBOOK} is empty ({len(raw)} bytes)")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SubmissionProblem(f"{NOTEBOOK} is not valid notebook JSON ({error})") from None
    if SURROGATE_ESCAPE.search(text):  # a lone surrogate ("\udcff" is valid JSON, not UTF-8) becomes "?"
        text = json.dumps(_without_lone_surrogates(data))
    try:
        with warnings.catch_warnings():  # duplicate cell ids (copied cells) are fixed silently
            warnings.simplefilter("ignore")
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
    except Exception as error:  # nbformat raises several kinds for malformed notebooks
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SubmissionProblem(f"{NOTEBOOK} is JSON but not a valid notebook ({first[:150]})") from None
    return nb


def _key(cell):
    return cell.cell_type, cell.source.strip()


def _signature(cell):
    """A line of a release stub that a student's answer keeps: its def line or first comment."""
    for line in cell.source.splitlines():
        if re.match(r"\s*def \w+\(", line):
            return line.split("(")[0].strip() + "("
    first = cell.source.strip().splitlines()[0] if cell.source.strip() else ""
    return first if first.startswith("#") and "YOUR CODE HERE" not in first else None


def repair(student_nb, release_nb):
    """Return a Repair: the student's notebook with the release's nbgrader cells in place.

    * duplicated grade_ids: only one copy keeps the metadata (for an answer, the copy that was
      answered; for a test, the first);
    * metadata stripped or cells whose grade_id is missing: answers found again by alignment
      with the release (and their def line), tests found by their exact code or re-inserted;
    * metadata edited (points, flags, type): reset to the release's;
    * test and read-only cells deleted or edited: put back (nbgrader then restores hidden tests).
    Cells the student added are kept as they are.
    """
    nb = copy.deepcopy(student_nb)
    notes = []
    release_cells = release_nb.cells
    wanted = {grade_id(c): c for c in release_cells if grade_id(c)}

    # 1. one cell per grade_id; unknown grade_ids, and nbgrader metadata that is no dict or has a
    # grade_id that is no string, are dropped (noted with repr: what a student wrote may hold
    # control characters meant for the instructor's terminal)
    seen = {}
    for index, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid is None:
            meta = nbgrader_meta(cell)
            if "nbgrader" in cell.get("metadata", {}) and (not meta or "grade_id" in meta):
                notes.append(f"ignored malformed nbgrader metadata {str(cell.metadata['nbgrader'])[:40]!r}")
                del cell.metadata["nbgrader"]
            continue
        if gid not in wanted:
            del cell.metadata["nbgrader"]
            notes.append(f"ignored unknown cell id {gid[:60]!r}")
            continue
        seen.setdefault(gid, []).append(index)
    for gid, indices in seen.items():
        if len(indices) > 1:
            stub = wanted[gid].source.strip()
            answered = [i for i in indices if nb.cells[i].source.strip() != stub]
            keep = answered[-1] if (nbgrader_meta(wanted[gid]).get("solution") and answered) else indices[0]
            for i in indices:
                if i != keep:
                    del nb.cells[i].metadata["nbgrader"]
            seen[gid] = [keep]
            notes.append(f"graded one copy of the duplicated cell {gid}")

    # 2. find cells whose metadata is gone, by aligning with the release
    missing = [gid for gid in wanted if gid not in seen]
    if missing:
        matcher = difflib.SequenceMatcher(None, [_key(c) for c in release_cells],
                                          [_key(c) for c in nb.cells], autojunk=False)
        release_to_student = {}
        for block in matcher.get_matching_blocks():
            for offset in range(block.size):
                release_to_student[block.a + offset] = block.b + offset
        reattached, inserted = [], []
        for r_index, r_cell in enumerate(release_cells):
            gid = grade_id(r_cell)
            if gid not in missing:
                continue
            s_index = release_to_student.get(r_index)
            if s_index is None and nbgrader_meta(r_cell).get("solution"):
                s_index = _find_answer(nb, release_cells, release_to_student, r_index, r_cell)
            if s_index is not None and not grade_id(nb.cells[s_index]):
                nb.cells[s_index].metadata["nbgrader"] = copy.deepcopy(nbgrader_meta(r_cell))
                reattached.append(gid)
                continue
            # not found: put the release's cell back after the cell that precedes it; a missing
            # answer that defines a function comes back as a comment, so that its stub cannot
            # shadow a definition the student wrote in another cell
            position = _insert_position(nb, release_cells, r_index)
            restored = copy.deepcopy(r_cell)
            if nbgrader_meta(r_cell).get("solution") and "def " in r_cell.source:
                restored.source = "# this answer cell was missing from the submission"
            nb.cells.insert(position, restored)
            inserted.append(gid)
            release_to_student = {r: (s + 1 if s >= position else s) for r, s in release_to_student.items()}
            release_to_student[r_index] = position
        if reattached:
            notes.append(f"re-attached nbgrader metadata to {len(reattached)} cells")
        if inserted:
            notes.append(f"restored {len(inserted)} deleted cells ({', '.join(inserted[:6])}"
                         f"{', ...' if len(inserted) > 6 else ''})")

    # 3. metadata and types as released; tests and read-only cells as released
    edited, retyped = [], []
    for index, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid is None:
            continue
        original = wanted[gid]
        meta = nbgrader_meta(original)
        if cell.metadata["nbgrader"] != meta:
            edited.append(gid)
            cell.metadata["nbgrader"] = copy.deepcopy(meta)
        if cell.cell_type != original.cell_type:
            retyped.append(gid)
            replacement = copy.deepcopy(original)
            if meta.get("solution"):
                replacement.source = cell.source
            nb.cells[index] = replacement
        elif not is_student_cell(meta) and cell.source != original.source:
            edited.append(gid)
            cell.source = original.source
    if edited:
        notes.append(f"restored edited test or read-only cells and metadata ({', '.join(sorted(set(edited))[:6])}"
                     f"{', ...' if len(set(edited)) > 6 else ''})")
    if retyped:
        notes.append(f"restored the cell type of {', '.join(retyped)}")
    nb.metadata["kernelspec"] = copy.deepcopy(release_nb.metadata.get("kernelspec", {}))
    ids = set()
    for number, cell in enumerate(nb.cells):  # copied cells share ids: make them unique
        if cell.get("id") in ids:
            cell.id = f"cell-{number}"
        ids.add(cell.get("id"))
    return Repair(nb, notes)


def _find_answer(nb, release_cells, release_to_student, r_index, r_cell):
    """Index of the student's cell answering release cell ``r_index``, or None."""
    before = max((s for r, s in release_to_student.items() if r < r_index), default=-1)
    after = min((s for r, s in release_to_student.items() if r > r_index), default=len(nb.cells))
    candidates = [i for i in range(before + 1, after)
                  if nb.cells[i].cell_type == r_cell.cell_type and not grade_id(nb.cells[i])]
    signature = _signature(r_cell)
    if signature:
        signed = [i for i in candidates if signature in nb.cells[i].source]
        if signed:
            return signed[0]
        if r_cell.cell_type == "code":
            return None
    return candidates[0] if candidates else None


def _insert_position(nb, release_cells, r_index):
    """Where to put release cell ``r_index`` back: after the student's copy of its predecessor."""
    for previous in range(r_index - 1, -1, -1):
        key = _key(release_cells[previous])
        gid = grade_id(release_cells[previous])
        for s_index in range(len(nb.cells) - 1, -1, -1):
            cell = nb.cells[s_index]
            if (gid and grade_id(cell) == gid) or (not gid and _key(cell) == key):
                return s_index + 1
    return 0


def prepare_submission(folder, staging_folder, release_notebook=RELEASE_DIR / NOTEBOOK):
    """Copy a student's submission to ``staging_folder`` with its notebook repaired.

    Returns the repair notes; raises SubmissionProblem if it cannot be graded.
    """
    nb = read_submission(folder)
    fixed = repair(nb, nbformat.read(release_notebook, as_version=4))
    if staging_folder.exists():
        shutil.rmtree(staging_folder)
    shutil.copytree(folder / ASSIGNMENT, staging_folder / ASSIGNMENT,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nbformat.write(fixed.notebook, staging_folder / ASSIGNMENT / NOTEBOOK)
    return fixed.notes, fixed.notebook
