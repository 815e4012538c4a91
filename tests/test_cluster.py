"""The checks of a grading cluster, the course tooling installed in the venv, and a grading
cluster started exactly as the README says.

The README's *Grading on several machines* is run as a new user would: a fresh clone of this
repository (its committed files), then the commands of the README's cluster block exactly, read
from the clone's README, with 127.0.0.1 for the scheduler's host and a free port for its port,
in a user's environment (nothing added: no PYTHONPATH, no venv on PATH). One clone plays every
machine, as when the README is tried on one machine.

The clone's venv is seeded with this checkout's installed packages (the same requirements.txt,
hard-linked, and their commands), so that its `make setup` finds them installed instead of
spending a minute and 900 MB on downloading them again; `make setup` itself, and so the
editable install of the clone's course tooling, runs as the README says.

Every process started here (the scheduler, the workers, their kernels) is stopped at the end,
whether the test passed or failed.
"""
import csv
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from distributed import Client

from assignment import ROOT
from assignment.fan_out import cluster_problems, code_version, describe

from .test_fan_out import free_port, stop_group

#: The scheduler's host in the README's commands, and what the tests put in its place.
README_HOST, README_PORT, HOST = "10.0.0.5", "8786", "127.0.0.1"


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


# --- the README's commands, from a clone -------------------------------------------------------

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


def readme_commands(readme):
    """The commands of the README's cluster block, each as (make target, argv), in order."""
    section = readme.split("### Grading on several machines", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            argv = shlex.split(line.replace(README_HOST, HOST))
            assert argv[0] == "make", f"the test plays only make targets, not: {line}"
            commands.append((argv[1], argv))
    return commands


def seed_venv(venv, env):
    """Give the clone's ``venv`` this checkout's installed packages (hard links) and their
    commands, but not this checkout's course tooling: what `make setup`'s
    `pip install -r requirements.txt` would install, without downloading it."""
    subprocess.run(["python3", "-m", "venv", "--without-pip", str(venv)], env=env, check=True, timeout=120)
    ours = Path(sysconfig.get_paths()["purelib"])
    theirs = venv / ours.relative_to(sys.prefix)
    assert theirs.is_dir()

    def link(source, target):
        try:
            os.link(source, target)
        except OSError:  # another file system
            shutil.copy2(source, target)

    for entry in ours.iterdir():  # not the editable install of this checkout's `assignment`
        if entry.name.startswith(("__editable__", "pa2_clustering")):
            continue
        if entry.is_dir():
            shutil.copytree(entry, theirs / entry.name, copy_function=link, symlinks=True)
        else:
            link(entry, theirs / entry.name)
    ours_bin, python = Path(sys.prefix) / "bin", venv / "bin" / "python"
    for dist in importlib.metadata.distributions(path=[str(ours)]):
        for entry in dist.entry_points.select(group="console_scripts"):
            script = venv / "bin" / entry.name
            if (ours_bin / entry.name).exists() and not script.exists():
                script.write_text(f"#!{python}\nimport sys\nfrom {entry.module} import {entry.attr.split('.')[0]}\n"
                                  f"if __name__ == '__main__':\n    sys.exit({entry.attr}())\n")
                script.chmod(0o755)


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A fresh clone of this repository's current commit with its venv seeded and the README's
    `make setup` run in it; the cluster block's other commands are left to the tests."""
    folder = tmp_path_factory.mktemp("cluster") / "clone"
    env = user_environment()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", str(ROOT), str(folder)], env=env, check=True, timeout=120)
    subprocess.run(["git", "-C", str(folder), "checkout", "--quiet", commit], env=env, check=True, timeout=120)
    seed_venv(folder / ".venv", env)
    setup = [argv for target, argv in readme_commands((folder / "README.md").read_text()) if target == "setup"]
    assert setup, "the README's cluster block runs make setup"
    for argv in setup:
        result = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder


class Machines:
    """Long-running commands (scheduler, workers), each in its own process group, with a log."""

    def __init__(self, logs):
        self.logs, self.processes = logs, []

    def start(self, argv, cwd, env, name, cpu=None):
        """Start ``argv``; ``cpu``: the one core of this "machine" (its processes, kernels included, run there)."""
        log = open(self.logs / f"{name}.log", "w")
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.processes.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True, preexec_fn=pin))
        log.close()

    def log(self, name):
        return (self.logs / f"{name}.log").read_text()[-3000:]

    def stop(self):
        for process in reversed(self.processes):  # the workers, then the scheduler
            stop_group(process)


@pytest.fixture
def machines(tmp_path):
    started = Machines(tmp_path)
    try:
        yield started
    finally:  # every process started is stopped, whatever failed
        started.stop()


def expected_examples(readme):
    """The README's quick start: student -> (score, max_score, status) of the example submissions."""
    block = re.search(r"```\nstudent_id +score +max_score +status +reason\n(.*?)```", readme, re.S).group(1)
    return {fields[0]: tuple(fields[1:4]) for fields in (line.split() for line in block.splitlines()) if fields}


def run(argv, cwd, env, timeout):
    """Run a command that ends, in its own process group (stopped if it does not end in time)."""
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        stop_group(process)
    return process.returncode, out, err


def test_the_readme_cluster_commands_grade_the_examples(clone, machines):
    """The README's cluster block, run as written: the scheduler, a worker command on each of two
    grading machines, `make grade` on the coordinator; the examples graded as the quick start says."""
    env, port = user_environment(), str(free_port())
    commands = [(target, [a.replace(README_PORT, port) for a in argv])
                for target, argv in readme_commands((clone / "README.md").read_text())]
    assert [target for target, _ in commands] == ["setup", "scheduler", "worker", "grade"], commands
    (_, scheduler), (_, worker), (_, grade) = commands[1:]
    address = f"tcp://{HOST}:{port}"
    assert f"SCHEDULER={address}" in worker and f"SCHEDULER={address}" in grade
    machines.start(scheduler, clone, env, "scheduler")
    cpus = sorted(os.sched_getaffinity(0))
    with Client(address, timeout="60s") as client:
        # two grading machines of one core each (make worker: one worker per core), on their own cores
        for n, name in enumerate(("machine-a", "machine-b"), start=1):
            machines.start(worker, clone, env, name, cpu=cpus[(n - 1) % len(cpus)])
            try:
                client.wait_for_workers(n, timeout=90)
            except TimeoutError:
                pytest.fail(f"{name}'s workers did not join:\n{machines.log(name)}\n{machines.log('scheduler')}")
        # each imports the course tooling that make setup installed in the clone, and nothing else
        package = str(clone / "assignment")
        where = "str(__import__('pathlib').Path(__import__('assignment').__file__).resolve().parent)"
        assert client.run_on_scheduler(eval, where, {}) == package
        assert set(client.run(eval, where, {}).values()) == {package}
        workers = {str(info.get("name")) for info in client.scheduler_info()["workers"].values()}
        workers |= set(client.scheduler_info()["workers"])
        returncode, out, err = run(grade, clone, env, timeout=900)
    assert returncode == 0, out[-3000:] + err[-3000:]
    with open(clone / "grades.csv", newline="") as handle:
        rows = {row["student_id"]: (row["score"], row["max_score"], row["status"]) for row in csv.DictReader(handle)}
    assert rows == expected_examples((clone / "README.md").read_text())
    for student in rows:  # graded on the cluster's workers, not on a local cluster
        record = json.loads((clone / "autograded" / student / "grading.json").read_text())
        assert record["worker"] in workers, (student, record["worker"], workers)


def test_a_scheduler_that_cannot_import_the_grader_stops_make_grade_with_one_message(clone, machines, tmp_path):
    """A scheduler and a worker started as the README used to say (`.venv/bin/dask scheduler`),
    from a venv that has the packages but not the course tooling: `make grade` names both,
    says what to run there, exits non-zero, and writes nothing."""
    env, port = user_environment(), str(free_port())
    address = f"tcp://{HOST}:{port}"
    old = tmp_path / "old-venv"  # a venv made by make setup before the course tooling was installed
    seed_venv(old, env)
    machines.start([str(old / "bin" / "dask"), "scheduler", "--host", HOST, "--port", port, "--no-dashboard"],
                   clone, env, "scheduler")
    with Client(address, timeout="60s") as client:
        machines.start([str(old / "bin" / "dask"), "worker", address, "--name", "machine-c", "--nthreads", "1",
                        "--no-dashboard"], clone, env, "machine-c")
        try:
            client.wait_for_workers(1, timeout=90)
        except TimeoutError:
            pytest.fail(f"the worker did not join:\n{machines.log('machine-c')}")
        worker = next(iter(client.scheduler_info()["workers"]))
    subprocess.run(["make", "clean"], cwd=clone, env=env, check=True, capture_output=True, timeout=60)
    # make grade checks the cluster before its release step; the grader checks again before it writes
    for command in (["make", "grade", f"SCHEDULER={address}"],
                    [str(clone / ".venv" / "bin" / "python"), "-m", "assignment.grade", "--scheduler", address]):
        returncode, out, err = run(command, clone, env, timeout=600)
        assert returncode == 2, (command, out[-3000:] + err[-3000:])
        assert err.count("error:") == 1, err[-3000:]
        message = err[err.index("error:"):]
        assert f"the grading cluster at {address} cannot grade" in message
        assert (f"- the scheduler {address} cannot import the grader (ModuleNotFoundError: No module named "
                "'assignment')" in message)
        assert f"then start it again: `make scheduler HOST={HOST} PORT={port}`." in message
        assert f"- the worker machine-c ({worker}) on {HOST} cannot import the grader" in message
        assert f"then start them again: `make worker SCHEDULER={address}`." in message
        assert "`make setup`" in message
        assert "failed" not in out and "generated release" not in out
        # nothing written: no gradebook, no grades.csv, no student's record, feedback or notebook
        assert not (clone / "gradebook.db").exists()
        assert not (clone / "grades.csv").exists()
        assert [p.name for p in (clone / "autograded").iterdir()] == ["README.md"]
        assert [p.name for p in (clone / "feedback").iterdir()] == ["README.md"]



def test_make_builds_the_release_again_only_when_what_it_is_made_from_changed(clone):
    """`make release` in the clone (as `make grade` runs it): built and checked once, then nothing
    to do until the master notebook, its data, the course config or the tooling changes."""
    env = user_environment()

    def make_release(*flags):
        result = subprocess.run(["make", *flags, "release"], cwd=clone, env=env, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return "-m assignment.release" in result.stdout

    make_release()  # built here, unless an earlier test's `make grade` built it already
    assert not make_release(), "an unchanged release was built again"
    for changed in ("source/pa2_clustering/clustering.ipynb", "source/pa2_clustering/simulated_data.npy",
                    "nbgrader_config.py", "assignment/preprocessors.py"):
        time_after = (clone / "release" / "pa2_clustering" / "clustering.ipynb").stat().st_mtime + 1
        os.utime(clone / changed, (time_after, time_after))
        assert make_release("--dry-run"), f"the release was not rebuilt after {changed} changed"
    (clone / "release" / "pa2_clustering" / "clustering.ipynb").unlink()
    assert make_release("--dry-run"), "a missing release was not rebuilt"
