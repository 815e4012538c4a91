"""The checks of a grading cluster, and the course tooling installed in the venv."""
import os
import re
import subprocess
import sys
from pathlib import Path

from assignment import ROOT
from assignment.fan_out import cluster_problems, code_version, describe

# --- the checks of a cluster, on made-up answers --------------------------------------------

HERE = {"version": "a" * 16, "package": "/course/assignment"}
SCHEDULER = "tcp://10.0.0.5:8786"


def test_a_cluster_that_runs_this_grader_everywhere_has_no_problem():
    answers = {"tcp://10.0.0.7:4001": dict(HERE), "tcp://10.0.0.8:4001": dict(HERE)}
    assert cluster_problems(SCHEDULER, dict(HERE), answers, here=HERE) == []


def test_each_machine_that_cannot_grade_is_named_with_what_to_run_there():
    other = {"version": "b" * 16, "package": "/old/clone/assignment"}
    answers = {"tcp://10.0.0.7:4001": dict(HERE),
               "tcp://10.0.0.8:4001": ModuleNotFoundError("No module named 'assignment'"),
               "tcp://10.0.0.8:4002": ModuleNotFoundError("No module named 'assignment'"),
               "tcp://10.0.0.9:4001": other}
    problems = cluster_problems(SCHEDULER, ModuleNotFoundError("No module named 'assignment'"), answers,
                                names={"tcp://10.0.0.9:4001": "gpu-box"}, here=HERE, commit=("1234abc", False))
    assert len(problems) == 3  # the scheduler, the two workers of 10.0.0.8 together, the worker of 10.0.0.9
    scheduler, same_host, old = problems
    assert scheduler.startswith("the scheduler tcp://10.0.0.5:8786 cannot import the grader "
                                "(ModuleNotFoundError: No module named 'assignment')")
    assert "On 10.0.0.5:" in scheduler and "`git checkout 1234abc`, `make setup`" in scheduler
    assert scheduler.endswith("`make scheduler HOST=10.0.0.5 PORT=8786`.")
    assert same_host.startswith("2 workers (tcp://10.0.0.8:4001, tcp://10.0.0.8:4002) on 10.0.0.8 cannot import")
    assert same_host.endswith("`make worker SCHEDULER=tcp://10.0.0.5:8786`.")
    assert old.startswith(f"the worker gpu-box (tcp://10.0.0.9:4001) on 10.0.0.9 runs other grader files "
                          f"(assignment/ version {'b' * 16} in /old/clone/assignment; the coordinator's is {'a' * 16})")
    assert not any("10.0.0.7" in p for p in problems)


def test_uncommitted_grader_changes_and_a_course_outside_git_are_said():
    answers = {"tcp://10.0.0.7:4001": {"version": "b" * 16}}
    dirty, = cluster_problems(SCHEDULER, dict(HERE), answers, here=HERE, commit=("1234abc", True))
    assert "`git checkout 1234abc`, bring the coordinator's uncommitted changes to assignment/, `make setup`" in dirty
    outside, = cluster_problems(SCHEDULER, dict(HERE), answers, here=HERE)
    assert f"put the coordinator's assignment/ (version {'a' * 16}) in place, `make setup`" in outside


def test_the_grader_version_is_a_hash_of_its_python_files(tmp_path):
    package = tmp_path / "assignment"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "grade.py").write_text("x = 1\n")
    before = code_version(package)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "grade.cpython-311.pyc").write_bytes(b"compiled")
    assert code_version(package) == before
    (package / "grade.py").write_text("x = 2\n")
    assert code_version(package) != before
    assert describe()["version"] == code_version(ROOT / "assignment")


# --- the course tooling is installed in the venv ----------------------------------------------

def test_programs_of_the_venv_import_the_installed_grader_from_anywhere(tmp_path):
    """A program of the venv that does not start in the clone (a console script such as
    `dask`, `nbgrader`, `jupyter`), with no PYTHONPATH, imports every class that
    nbgrader_config.py names, from this checkout (make setup's editable install)."""
    names = sorted(set(re.findall(r'"(assignment\.[\w.]+)"', (ROOT / "nbgrader_config.py").read_text())))
    assert len(names) >= 5
    program = tmp_path / "program.py"  # sys.path[0] is the script's folder, as for a console script
    program.write_text("import sys\nfrom traitlets.utils.importstring import import_item\n"
                       "for name in sys.argv[1:]:\n"
                       "    print(sys.modules[import_item(name).__module__].__file__)\n")
    result = subprocess.run([sys.executable, str(program), *names], cwd=tmp_path, env=user_environment(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    files = result.stdout.split()
    assert len(files) == len(names)
    assert all(Path(f).resolve().parent == ROOT / "assignment" for f in files), files


def user_environment():
    """The environment of a user's shell: without what the test runner or `make test` added
    (the venv's bin/ on PATH, PYTHONPATH, MPLBACKEND, PA2_* and DASK_* settings)."""
    keep = ("HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR",
            "PYENV_ROOT", "PYENV_VERSION")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    venv = os.path.realpath(sys.prefix)
    env["PATH"] = os.pathsep.join(p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep)
                                  if p and not os.path.realpath(p).startswith(venv + os.sep))
    return env
