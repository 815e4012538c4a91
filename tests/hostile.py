"""Broken and hostile submissions, each with the outcome grading must give it.

Each case writes one student's folder (``submitted/<case>/...``) from the release and the
reference answers, then breaks it the way real submissions break. ``CASES`` maps the case to
(what it does, expected status, a phrase the reason must contain, automatic points it may lose).
"""
import copy
import json
import os

import nbformat

from assignment import ASSIGNMENT, NOTEBOOK
from assignment.examples import fill_release
from assignment.gradebook import cell_scores
from assignment.mutants import automatic_cells, reference_answers


def good_notebook(**overrides):
    """The release with every code answer filled in from the master notebook, plus overrides."""
    return fill_release({**reference_answers(), **overrides})


def after_act7(code):
    """The reference Act 7 (k = 2) cell, then ``code``: the hostile part comes after the plot."""
    return reference_answers()["act7_k_means_k2"] + "\n" + code


def write(folder, nb=None, name=NOTEBOOK, raw=None):
    path = folder / ASSIGNMENT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw is not None:
        path.write_bytes(raw)
    else:
        nbformat.write(nb, path)
    return path


def cells(nb, grade_id):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id]


ENDLESS_RAND_INIT = '''def rand_init(X, k):
    rows = set()
    while len(rows) < k:  # off by one: never picks the last row, so k == n never ends
        rows.add(np.random.randint(len(X) - 1))
    return X[sorted(rows)]
'''

#: k_means has the grader compute a stand-in's answer that never ends: the reference
#: update_centroids loops over k in the grader, on X of zero columns (so no memory is asked for).
STANDIN_NEVER_RETURNS = '''def k_means(X, k, max_iters=50, eps=1e-5):
    update_centroids(np.zeros((1, 0)), 10**15, [0])
    return np.zeros((k, np.shape(X)[1])), [0.0]
'''

UNINTERRUPTIBLE_FIXED_SUM_PROD = '''import signal

def fixed_sum_prod(X, y):
    # blocks the signals that interrupt it (SIGINT from the grader, SIGALRM from the tests), then hangs
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGALRM})
    while True:
        pass
'''

#: An Act 7 cell that ignores the interrupt: only a restart stops it.
#: The kernel_exit case leaves a note in the one folder its kernel may write in, then ends the
#: kernel; the grader grades it again without that cell, and a later cell looks for the note. A
#: note seen there would carry what one run learned (the instructor's answers, from a stand-in)
#: into the next.
KEEP_A_NOTE_AND_EXIT = '''import os
from ipykernel.kernelapp import IPKernelApp
open(os.path.join(os.path.dirname(IPKernelApp.instance().ip), "note-from-an-earlier-run"), "w").close()
os._exit(3)
'''
READ_THE_NOTE = '''import os as _os
from ipykernel.kernelapp import IPKernelApp as _App
_seen = _os.path.exists(_os.path.join(_os.path.dirname(_App.instance().ip), "note-from-an-earlier-run"))
print("a note from an earlier run: " + ("seen" if _seen else "none"))
'''

#: Before it forces a restart, it swaps what the grader opens again then, or when the notebook
#: ends: its connection file for a FIFO (an open with no writer blocks) and the progress file
#: beside it for a link to a file outside. Neither may work: the kernel writes only in its
#: sockets' folder.
IGNORES_INTERRUPT = '''import os, signal, sys
connection_file = [a for a in sys.argv if a.endswith(".json")][0]
for swap in (lambda: (os.remove(connection_file), os.mkfifo(connection_file)),
             lambda: os.symlink("/tmp/pa2_written_by_student.txt",
                                os.path.join(os.path.dirname(connection_file), "progress.json"))):
    try:
        swap()
    except OSError:
        pass
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
'''

#: The odd_files case: a cell reads the file its submission links to an instructor's file, and
#: an added cell's grade_id would rewrite the instructor's terminal line (carriage return,
#: erase line) to show a forged row and hide what follows.
READ_THE_LINK = '''import os as _os
print("LINKED:", open("linked.txt").read()[:200] if _os.path.exists("linked.txt") else "absent")
'''
FORGED_ROW = "\r\x1b[2Kforged  74  74  graded\x1b[8m"

#: The snooping case, in two cells so that each part of the walk has a whole cell's time limit
#: (12 s in test_hostile.py: in the sandbox, beside the hanging kernels of the hostile class, the
#: two parts took 2.1 s and 1.6 s on 2026-12-07). Each part prints what it found only when it
#: walked everything it was given, so a walk cut short fails the test rather than passing it.
SNOOP_USR = '''import os, socket

def snoop(tops, skip=()):
    found = []
    for top in tops:
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "dev") and os.path.join(folder, d) not in skip]
            for name in files:
                path = os.path.join(folder, name)
                if name == "gradebook.db" or name.endswith(".ipynb") or "source" in folder.split(os.sep):
                    try:
                        text = open(path, errors="ignore").read()
                    except OSError:
                        continue
                    if "pa2_clustering" in text and (name == "gradebook.db" or "_lloyd_trajectory" in text):
                        found.append(path)
    return found

print("SNOOP found under /usr:", snoop(["/usr"]))
'''
SNOOP_REST = '''print("SNOOP found:", snoop(["/", os.path.expanduser("~")], skip=("/usr",)))
try:
    socket.create_connection(("127.0.0.1", PORT), timeout=3).close()
    print("SNOOP network: connected")
except OSError as error:
    print("SNOOP network: blocked", type(error).__name__)
for target in TARGETS:
    try:
        with open(target, "w") as handle:
            handle.write("written by student code")
        print("SNOOP write: wrote", target)
    except OSError as error:
        print("SNOOP write: blocked", type(error).__name__)
'''


def build(case, folder, context):
    """Write case ``case`` into ``folder``; ``context`` has 'port' and 'targets' for snooping."""
    if case == "good":
        write(folder, good_notebook())
    elif case == "endless_loops":
        write(folder, good_notebook(rand_init=ENDLESS_RAND_INIT,
                                    act7_k_means_k2="while True:\n    pass"))
    elif case == "uninterruptible_hang":
        write(folder, good_notebook(fixed_sum_prod=UNINTERRUPTIBLE_FIXED_SUM_PROD))
    elif case == "ignores_interrupt":
        write(folder, good_notebook(act7_k_means_k2=IGNORES_INTERRUPT))
    elif case == "kernel_exit":
        write(folder, good_notebook(act7_k_means_k2=KEEP_A_NOTE_AND_EXIT,
                                    act7_k_means_k3=reference_answers()["act7_k_means_k3"] + "\n" + READ_THE_NOTE))
    elif case == "standin_never_returns":
        write(folder, good_notebook(k_means=STANDIN_NEVER_RETURNS))
    elif case == "kernel_exit_in_test":
        write(folder, good_notebook(rand_init="import os\n\ndef rand_init(X, k):\n    os._exit(3)"))
    elif case == "kernel_segfault":
        write(folder, good_notebook(act7_k_means_k2="import faulthandler\nfaulthandler._sigsegv()"))
    elif case == "memory_bomb":
        write(folder, good_notebook(act7_k_means_k2=after_act7(
            "def hoard():\n    chunks = []\n    while True:\n        chunks.append(np.ones(10**7))\n"
            "hoard()")))
    elif case == "output_flood":
        write(folder, good_notebook(act7_k_means_k2=after_act7(
            "print('x' * 5000000)\nfor i in range(200000):\n    print('line', i)")))
    elif case == "invalid_json":
        write(folder, raw=b'{"cells": [ {"cell_type": "code", "source": "oops"')
    elif case == "empty_file":
        write(folder, raw=b"")
    elif case == "wrong_name":
        write(folder, good_notebook(), name="clustering (1).ipynb")
    elif case == "missing_notebook":
        (folder / ASSIGNMENT).mkdir(parents=True)
        (folder / ASSIGNMENT / "notes.txt").write_text("I could not finish, sorry")
    elif case == "duplicated_cells":
        nb = good_notebook()
        stub = copy.deepcopy(cells(fill_release({}), "update_centroids")[0])
        stub.id = "copy-of-update-centroids"  # JupyterLab gives a copied cell a new id
        answer = cells(nb, "update_centroids")[0]
        nb.cells.insert(nb.cells.index(answer), stub)        # the stub first, the answer after
        test = cells(nb, "compute_sq_dists_matches_cdist")[0]
        duplicate = copy.deepcopy(test)
        duplicate.id = "copy-of-compute-sq-dists-test"
        nb.cells.insert(nb.cells.index(test) + 1, duplicate)
        write(folder, nb)
    elif case == "deleted_test_cells":
        nb = good_notebook()
        for grade_id in ("compute_sq_dists_sanity", "update_centroids_empty_cluster",
                         "k_means_relative_stopping", "act8_k1_losses", "grader_reference_code"):
            nb.cells.remove(cells(nb, grade_id)[0])
        write(folder, nb)
    elif case == "edited_test_cells":
        nb = good_notebook()
        cells(nb, "k_means_zero_loss")[0].source = '"""Hidden: always passes now."""\npass'
        cells(nb, "update_centroids_vectorised")[0].metadata.nbgrader["points"] = 100
        cells(nb, "rand_init_uses_np_random")[0].metadata.nbgrader["grade"] = False
        write(folder, nb)
    elif case == "stripped_metadata":
        nb = good_notebook()
        for cell in nb.cells:
            cell.metadata = {}
        write(folder, nb)
    elif case == "tamper_numpy":
        write(folder, good_notebook(compute_sq_dists=(
            "def compute_sq_dists(X, W):\n    return np.zeros((len(X), len(W)))\n\n"
            "np.isclose = lambda a, b, **kw: np.ones(np.broadcast(a, b).shape, dtype=bool)\n"
            "np.array_equal = lambda a, b, **kw: True")))
    elif case == "tamper_custom_exc":
        write(folder, good_notebook(update_centroids=(
            "def update_centroids(X, k, assoc):\n    return None\n\n"
            "get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)")))
    elif case == "tamper_builtins":
        write(folder, good_notebook(rand_init=(
            "import builtins\n\ndef rand_init(X, k):\n    return X[:k]\n\n"
            "builtins.sum = lambda *args, **kwargs: 0")))
    elif case == "tamper_sys_modules":
        write(folder, good_notebook(associate_centroids=(
            "import sys, types\n\ndef associate_centroids(X, W):\n    return 0.0, np.zeros(len(X), int)\n\n"
            "sys.modules['numpy.testing'] = types.ModuleType('numpy.testing')")))
    elif case == "tamper_check_helpers":
        write(folder, good_notebook(k_means=(
            "def k_means(X, k, max_iters=50, eps=1e-5):\n    return X[:k], [0.0]\n\n"
            "def check(condition, message):\n    pass")))
    elif case == "odd_files":
        nb = good_notebook(act7_k_means_k3=reference_answers()["act7_k_means_k3"] + "\n" + READ_THE_LINK)
        nb.cells.append(nbformat.v4.new_markdown_cell("an added cell", metadata={"nbgrader": 5}))
        nb.cells.append(nbformat.v4.new_code_cell("# a lone surrogate: \udcff\nx = 1", metadata={"nbgrader": {
            "grade_id": FORGED_ROW, "solution": True, "grade": False, "locked": False, "schema_version": 3}}))
        path = write(folder, raw=json.dumps(nb).encode())  # (nbformat.write refuses the lone surrogate)
        (path.parent / os.fsdecode(b"notes\xff.txt")).write_text("a file name that is not UTF-8")
        (path.parent / "linked.txt").symlink_to(context["link_target"])
    elif case == "snooping":
        rest = SNOOP_REST.replace("PORT", str(context["port"])).replace("TARGETS", json.dumps(context["targets"]))
        write(folder, good_notebook(act7_k_means_k2=after_act7(SNOOP_USR),
                                    act7_k_means_k3=reference_answers()["act7_k_means_k3"] + "\n" + rest))
    else:
        raise KeyError(case)


#: case -> (what it does, status, phrase of the reason, grade_ids allowed to lose points)
CASES = {
    "good": ("complete correct answers", "needs_manual_grading", "manual grading", set()),
    "endless_loops": ("rand_init loops forever when k == n; an Act 7 cell loops forever",
                      "needs_manual_grading", "cells stopped for taking too long",
                      {"rand_init_distinct_rows", "rand_init_uses_np_random", "act7_scatter_plots"}),
    "uninterruptible_hang": ("fixed_sum_prod blocks SIGINT and SIGALRM, then loops forever", "flagged",
                             "cells stopped for taking too long", {"fixed_sum_prod_other_shapes"}),
    "ignores_interrupt": ("an Act 7 cell swaps the kernel's connection file for a FIFO and the progress "
                          "file for a link outside, then ignores SIGINT and loops forever", "flagged",
                          "cells stopped for taking too long: act7_k_means_k2", {"act7_scatter_plots"}),
    "kernel_exit": ("an Act 7 cell leaves a note where its kernel may write, then calls os._exit",
                    "needs_manual_grading",
                    "graded again without cell act7_k_means_k2, which stopped the kernel", {"act7_scatter_plots"}),
    "kernel_segfault": ("an Act 7 cell crashes the interpreter (SIGSEGV)", "needs_manual_grading",
                        "graded again without cell act7_k_means_k2, which stopped the kernel", {"act7_scatter_plots"}),
    "kernel_exit_in_test": ("rand_init calls os._exit, so a test cell kills the kernel", "failed",
                            "the kernel died", None),
    "standin_never_returns": ("k_means has the grader compute update_centroids' answer for k = 10**15, "
                              "which never ends", "failed", "ran past its time", None),
    "memory_bomb": ("an Act 7 cell allocates memory without end", "needs_manual_grading", "", set()),
    "output_flood": ("an Act 7 cell prints a 5 MB line and 200000 more lines", "needs_manual_grading", "", set()),
    "invalid_json": ("a truncated notebook file", "failed", "not valid notebook JSON", None),
    "empty_file": ("a notebook file of 0 bytes", "failed", "is empty", None),
    "wrong_name": ("the notebook saved as 'clustering (1).ipynb'", "failed", "must keep its name", None),
    "missing_notebook": ("no notebook at all", "failed", "no pa2_clustering/clustering.ipynb", None),
    "duplicated_cells": ("an answer cell and a test cell duplicated", "needs_manual_grading",
                         "duplicated cell", set()),
    "deleted_test_cells": ("five test cells deleted, the hidden reference cell among them",
                           "needs_manual_grading", "restored 5 deleted cells", set()),
    "edited_test_cells": ("a test cell emptied, a test's points and a test's flags changed",
                          "needs_manual_grading", "restored edited", set()),
    "stripped_metadata": ("every cell's metadata removed", "needs_manual_grading",
                          "re-attached nbgrader metadata", set()),
    "tamper_numpy": ("wrong compute_sq_dists, np.isclose and np.array_equal patched to pass",
                     "flagged", "assigns np.isclose", None),
    "tamper_custom_exc": ("wrong update_centroids, exceptions swallowed with set_custom_exc",
                          "flagged", "set_custom_exc", None),
    "tamper_builtins": ("wrong rand_init, builtins.sum replaced", "flagged", "assigns builtins.sum", None),
    "tamper_sys_modules": ("wrong associate_centroids, sys.modules edited", "flagged", "sys.modules", None),
    "tamper_check_helpers": ("wrong k_means, the check helper redefined", "flagged", "redefines check", None),
    "odd_files": ("a file name that is not UTF-8, a link to an instructor's file, an added cell whose "
                  "nbgrader metadata is 5, one whose grade_id holds terminal control characters and a "
                  "lone surrogate", "needs_manual_grading", "ignored malformed nbgrader metadata", set()),
    "snooping": ("walks the file system for hidden tests and the gradebook, connects to a "
                 "loopback server, writes outside its folder", "needs_manual_grading", "", set()),
}


def auto_losses(course, student):
    """The automatic cells in which ``student`` lost points, in the gradebook of ``course``."""
    scores = cell_scores(student, f"sqlite:///{course / 'gradebook.db'}")
    return {g for g, (score, top) in scores.items() if g in automatic_cells() and score < top}
