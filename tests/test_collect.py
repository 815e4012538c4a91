"""Taking in a Canvas "Download submissions" zip through nbgrader's zip_collect."""
import csv
import zipfile

import nbformat

import assignment
from assignment import collect

from .conftest import copy_course, run_module

ROSTER = "student_id,name,email,canvas_id,sis_user_id,sis_login_id,section\n" \
         "ada,\"Lovelace, Ada\",ada@x,201,S1,ada,A\nbob,Bob,bob@x,202,S2,bob,A\ncyd,Cyd,cyd@x,203,S3,cyd,A\n" \
         "dee,Dee,dee@x,204,S4,dee,A\neve,Eve,eve@x,205,S5,eve,A\n"


def test_canvas_names_are_parsed():
    parts = collect.parse_name("lovelaceada_201_9001_clustering.ipynb")
    assert (parts["name"], parts["canvas_id"], parts["submission_id"], parts["file_id"], parts["late"]) == \
        ("lovelaceada", "201", "9001", "clustering.ipynb", False)
    late = collect.parse_name("bob_LATE_202_9002_clustering-2.ipynb")
    assert (late["canvas_id"], late["file_id"], late["copy"], late["late"]) == ("202", "clustering.ipynb", 2, True)
    assert collect.parse_name("bob_late_202_9002_my_clustering.ipynb")["file_id"] == "my_clustering.ipynb"
    assert collect.parse_name("clustering.ipynb") is None
    assert collect.parse_name("bob_202_clustering.ipynb") is None


def test_the_notebook_saved_by_a_browser_or_in_other_capitals_is_the_notebook():
    """`clustering (1).ipynb` (a browser's second download) and `Clustering.ipynb` are the
    assignment's notebook; another name stays as the student gave it."""
    again = collect.parse_name("smithalex_10233_900011_clustering (1).ipynb")
    assert (again["file_id"], again["copy"]) == ("clustering.ipynb", 1), again
    assert collect.parse_name("smithalex_10233_900012_Clustering.ipynb")["file_id"] == "clustering.ipynb"
    assert collect.parse_name("smithalex_10233_900013_kmeans (1).ipynb")["file_id"] == "kmeans (1).ipynb"
    take, skipped = collect.plan(["smithalex_10233_900010_clustering.ipynb", "smithalex_10233_900011_clustering (1).ipynb"],
                                 {"10233": "smith"})
    assert take == {"smithalex_10233_900011_clustering (1).ipynb": ("smith", "clustering.ipynb", False)}, take
    assert skipped["smithalex_10233_900010_clustering.ipynb"].startswith("an older copy of clustering.ipynb of smith")


def test_plan_keeps_the_newest_copy_and_names_what_it_skips():
    names = ["ada_201_1_clustering.ipynb", "ada_LATE_201_5_clustering-1.ipynb", "eve_999_3_clustering.ipynb",
             "notes.ipynb", "bob_202_2_clustering.ipynb"]
    take, skipped = collect.plan(names, {"201": "ada", "202": "bob"})
    assert take == {"ada_LATE_201_5_clustering-1.ipynb": ("ada", "clustering.ipynb", True),
                    "bob_202_2_clustering.ipynb": ("bob", "clustering.ipynb", False)}
    assert skipped["ada_201_1_clustering.ipynb"].startswith("an older copy of clustering.ipynb of ada")
    assert skipped["eve_999_3_clustering.ipynb"] == "Canvas id 999 is not in the roster"
    assert "not a Canvas submission name" in skipped["notes.ipynb"]


def notebook_text(marker):
    nb = nbformat.read(assignment.RELEASE_DIR / assignment.NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell(marker))
    return nbformat.writes(nb)


def test_a_canvas_zip_lands_in_submitted(tmp_path):
    course = copy_course(tmp_path / "course", submitted=False)
    (course / "roster.csv").write_text(ROSTER, encoding="utf-8")
    archive = tmp_path / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("lovelaceada_201_9001_clustering.ipynb", notebook_text("ada's first"))
        z.writestr("lovelaceada_201_9005_clustering-1.ipynb", notebook_text("ada's resubmission"))
        z.writestr("bob_LATE_202_9002_clustering.ipynb", notebook_text("bob's late one"))
        z.writestr("mallory_999_9003_clustering.ipynb", notebook_text("not enrolled"))
        z.writestr("bob_202_9004_notes.txt", "a stray file")
        z.writestr("dee_204_9006_clustering.ipynb", notebook_text("dee's first"))
        z.writestr("dee_204_9007_clustering (1).ipynb", notebook_text("dee's second, saved again by a browser"))
        z.writestr("eve_205_9008_kmeans.ipynb", notebook_text("eve's, under another name"))
    result = run_module(course, "collect", str(archive), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["ada", "bob", "dee", "eve"]
    assert "dee's second" in (submitted / "dee" / assignment.ASSIGNMENT / assignment.NOTEBOOK).read_text()
    ada = (submitted / "ada" / assignment.ASSIGNMENT / assignment.NOTEBOOK).read_text()
    assert "ada's resubmission" in ada and "ada's first" not in ada
    assert "bob's late one" in (submitted / "bob" / assignment.ASSIGNMENT / assignment.NOTEBOOK).read_text()
    out = result.stdout
    assert "bob_LATE_202_9002_clustering.ipynb -> submitted/bob/pa2_clustering/clustering.ipynb (late)" in out
    assert "not collected: mallory_999_9003_clustering.ipynb: Canvas id 999 is not in the roster" in out
    assert "not collected: lovelaceada_201_9001_clustering.ipynb: an older copy" in out
    assert "not collected: bob_202_9004_notes.txt" in out
    assert "on the roster but not in the zip: cyd" in out
    assert "warning: eve sent no clustering.ipynb (only kmeans.ipynb)" in out, out
