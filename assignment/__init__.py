"""Course tooling for Programming Assignment 2: Clustering (k-means in NumPy) on nbgrader."""
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "pa2_clustering"
NOTEBOOK = "clustering.ipynb"
DATA_FILE = "simulated_data.npy"

SOURCE_DIR = ROOT / "source" / ASSIGNMENT
RELEASE_DIR = ROOT / "release" / ASSIGNMENT
SUBMITTED_DIR = ROOT / "submitted"
GRADES_CSV = ROOT / "grades.csv"


def copy_course(target, parts=("nbgrader_config.py", "assignment", "source", "release")):
    """Copy ``parts`` of this course into the folder ``target`` (a course nbgrader may write in)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in parts:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, target / name)
    return target
