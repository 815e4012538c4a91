"""Each grading worker shares the CPU in a control group of its own (``assignment.cpu_groups``):
a notebook that starts busy processes slows only its own worker, never another student's
timed checks. With the real local Dask cluster, warm kernels and the sandbox."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assignment import cpu_groups
from assignment.fan_out import dask_client
from assignment.mutants import reference_answers
from assignment.nbgrader_cli import nbgrader_env

from .conftest import class_course, run_module
from .hostile import auto_losses, good_notebook, write


def _can_make_groups():
    """Whether a group can be made beside this process's own (made and removed again)."""
    found = cpu_groups._cpu_hierarchy(cpu_groups._read("/proc/self/cgroup"), cpu_groups._read("/proc/self/mountinfo"))
    if found is None:
        return False
    probe = found[0] / f"pa2-probe-{os.getpid()}"
    try:
        probe.mkdir()
        probe.rmdir()
    except OSError:
        return False
    return True


needs_groups = pytest.mark.skipif(not _can_make_groups(), reason="no CPU control group can be made here")

#: Twenty processes that keep a core busy for 20 s each (they end with the notebook's kernel).
CROWDS_THE_MACHINE = '''import subprocess, sys
_busy = [subprocess.Popen([sys.executable, "-c",
                          "import time\\nt = time.time()\\nwhile time.time() - t < 20: pass"]) for _ in range(20)]'''


def _groups_here():
    """This worker's CPU group, and that of every process it started that still runs."""
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    return cpu_groups.group_of(), sorted({cpu_groups.group_of(pid) for pid in children} - {""})


@needs_groups
def test_each_worker_and_everything_it_starts_is_in_a_group_of_its_own(monkeypatch):
    """Each worker of the local cluster is in a pa2-worker-<pid> group of its own, with its
    template; the groups are gone once the cluster has closed."""
    monkeypatch.setenv("KERNELS", "warm")
    with dask_client(workers=2) as client:
        client.run(__import__("assignment.warm_kernels", fromlist=["x"]).start_template)
        found = client.run(_groups_here)
    groups = {address: own for address, (own, _) in found.items()}
    assert len(set(groups.values())) == 2 and all(g.startswith(cpu_groups.PREFIX) for g in groups.values()), groups
    for address, (own, children) in found.items():
        assert children == [own], f"expected the worker's children (its template) in {own}, got {children}"
    left = [g for g in groups.values() if (cpu_groups.own_folder() / g).exists()]
    assert left == [], f"expected the workers' groups removed once the cluster closed, got {left}"


@needs_groups
def test_a_notebook_that_crowds_the_machine_costs_another_student_nothing(tmp_path):
    """A notebook starts twenty busy processes while another worker grades a correct one: the
    correct one keeps every automatic point, its timed vectorisation checks among them."""
    course = class_course(tmp_path / "crowded")
    first = next(iter(reference_answers()))  # its first answer cell: the busy processes start at once
    write(course / "submitted" / "crowds_the_machine",
          good_notebook(**{first: reference_answers()[first] + "\n" + CROWDS_THE_MACHINE}))
    result = run_module(course, "grade", "--workers", "2", "--no-feedback", "correct_alternative",
                        "crowds_the_machine", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lost = auto_losses(course, "correct_alternative")
    assert lost == set(), f"expected every automatic point of the correct notebook kept, got these lost: {lost}"


#: A worker's life in short: it starts its template, waits until it is ready, and exits.
STARTS_A_TEMPLATE_AND_EXITS = """from assignment import cpu_groups
from assignment.warm_kernels import warm_kernels
template = warm_kernels().template_for_next_submission()
assert template is not None and not template.problem, warm_kernels().problem
print(cpu_groups.join()[0])"""


@needs_groups
def test_a_worker_stops_its_template_and_removes_its_own_group_when_it_exits():
    """A worker's exit stops its template first, then removes the worker's group itself: no group
    is left for the coordinator to clean up, and the exit does not wait for one to empty."""
    result = subprocess.run([sys.executable, "-c", STARTS_A_TEMPLATE_AND_EXITS], capture_output=True, text=True,
                            env={**os.environ, "KERNELS": "warm"}, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    group = Path(result.stdout.strip())
    assert group.name.startswith(cpu_groups.PREFIX), f"expected the worker in a group of its own, got {group}"
    assert not group.exists(), f"expected {group} removed by the worker as it exited, got it still there"


@needs_groups
def test_where_no_group_can_be_made_the_class_is_graded_and_the_run_says_so_once(tmp_path):
    """With the cgroup file system read-only (as in a default Docker container), the workers
    share the cores as plain processes: the class is graded, and the run says so once, with why."""
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace can be made here")
    course = class_course(tmp_path / "read_only_cgroups")
    mounts = cpu_groups.cgroup_mounts(Path("/proc/self/mountinfo").read_text())
    read_only = 'for point in $MOUNTS; do mount -o remount,bind,ro "$point" || exit 3; done; exec "$@"'
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", read_only, "sh",
                             sys.executable, "-m", "assignment.grade", "--workers", "2", "--no-feedback",
                             "correct_alternative", "untouched_release"],
                            cwd=course, env=nbgrader_env({"MOUNTS": " ".join(point for _, _, point, _ in mounts)}),
                            capture_output=True, text=True, timeout=900)
    if result.returncode == 3:
        pytest.skip(f"the cgroup file systems cannot be remounted read-only here: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    notes = [line for line in result.stderr.splitlines() if "shared the cores as plain processes" in line]
    assert len(notes) == 1 and notes[0].startswith("note: 2 submissions were graded by workers") \
        and "no CPU group could be made" in notes[0], f"expected one note with its reason, got {notes}"
    record = json.loads((course / "autograded" / "correct_alternative" / "grading.json").read_text())
    lost = auto_losses(course, "correct_alternative")
    assert record["problem"] == "" and lost == set(), \
        f"expected the correct notebook graded with every automatic point, got {record['problem'] or lost}"
