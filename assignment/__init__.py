"""Course tooling for Programming Assignment 2: Clustering (k-means in NumPy) on nbgrader."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "pa2_clustering"
NOTEBOOK = "clustering.ipynb"
DATA_FILE = "simulated_data.npy"

SOURCE_DIR = ROOT / "source" / ASSIGNMENT
RELEASE_DIR = ROOT / "release" / ASSIGNMENT
SUBMITTED_DIR = ROOT / "submitted"
AUTOGRADED_DIR = ROOT / "autograded"
FEEDBACK_DIR = ROOT / "feedback"
GRADES_CSV = ROOT / "grades.csv"
