"""The venv `make setup` builds from requirements.txt, installed with `pip install --no-deps`."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Left out of requirements.txt on purpose (README, *Dependencies*): jsonschema's optional IRI
#: format check, which compiles a Lark grammar at import, a second in every process that imports
#: nbformat (every grading worker and nbgrader command).
LEFT_OUT = {"rfc3987-syntax", "lark"}


def pinned():
    names = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(line.split("==")[0].lower())
    return names


def test_every_installed_package_has_what_it_requires():
    """expected `pip check` to find nothing missing with requirements.txt installed without dependencies"""
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"expected no broken requirements, got:\n{result.stdout}{result.stderr}"


def test_requirements_pin_every_package_exactly_once_and_leave_out_the_slow_import():
    names = [line.split("==")[0].lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(names) == len(set(names)), f"expected each package pinned once, got duplicates in {names}"
    assert all("==" in line for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line.strip() and not line.startswith("#")), "expected every line of requirements.txt pinned with =="
    assert not pinned() & LEFT_OUT, f"expected {sorted(LEFT_OUT)} left out, got {sorted(pinned() & LEFT_OUT)}"


def test_nbformat_validates_without_the_iri_grammar():
    """Importing nbformat and validating the release does not load rfc3987-syntax."""
    code = ("import sys, nbformat; nb = nbformat.read(sys.argv[1], as_version=4); nbformat.validate(nb); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rfc3987_syntax', 'lark')))")
    result = subprocess.run([sys.executable, "-c", code, str(ROOT / "release" / "pa2_clustering" / "clustering.ipynb")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"expected no IRI grammar modules loaded, got {result.stdout.strip()}"
