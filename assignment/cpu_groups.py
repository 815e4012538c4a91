"""One CPU group per grading worker: a notebook's busy processes slow only its own worker.

Linux shares the cores among runnable threads. A notebook that starts twenty busy processes
would take most of the machine from the other workers' kernels, and a correct student's
vectorisation checks, timed on the wall clock, would fail beside it (measured: three checks
lost, the notebook 15 times slower). With a control group per worker (the CPU controller:
cgroup v1's ``cpu`` hierarchy, or cgroup v2 where ``cpu`` can be enabled for the children of
the worker's own group), the scheduler shares the cores among the workers first, and then
among the processes of each: whatever a notebook starts competes only with its own worker.

A worker joins its group before it starts its template or any kernel, so the template, every
kernel and everything they start are in it. None can leave it or change its share: no kernel
has a capability or can make a user namespace, so none can mount the cgroup file system
(``assignment.sandbox``). Where no group can be made (no permission, no CPU controller, not
Linux), the workers share the cores as processes do, and :func:`join` returns why.
"""
import atexit
import os
import time
from pathlib import Path

#: A worker's group is ``pa2-worker-<its pid>``, beside the group it was started in.
PREFIX = "pa2-worker-"
_JOINED = {}


def _cpu_hierarchy(cgroup_text, mountinfo_text):
    """``(folder of this process's group in the CPU controller's hierarchy, cgroup version)``,
    from ``/proc/self/cgroup`` and ``/proc/self/mountinfo``; None where there is none."""
    groups = {}
    for line in cgroup_text.splitlines():
        number, controllers, path = line.split(":", 2)
        groups[controllers] = path
    mounts = cgroup_mounts(mountinfo_text)
    for fstype, root, point, options in mounts:
        if fstype == "cgroup" and "cpu" in options:
            own = next((path for names, path in groups.items() if "cpu" in names.split(",")), None)
            if own is not None:
                return _inside(point, root, own), 1
    for fstype, root, point, _ in mounts:
        if fstype == "cgroup2" and "" in groups:
            folder = _inside(point, root, groups[""])
            if "cpu" in _read(folder / "cgroup.controllers").split():
                return folder, 2
    return None


def cgroup_mounts(mountinfo_text):
    """``(type, root, mount point, options)`` of each cgroup file system in ``mountinfo_text``
    (the text of ``/proc/<pid>/mountinfo``)."""
    mounts = []
    for line in mountinfo_text.splitlines():
        left, _, right = line.partition(" - ")
        fields, described = left.split(), right.split()
        if len(fields) > 4 and len(described) > 2 and described[0] in ("cgroup", "cgroup2"):
            mounts.append((described[0], fields[3], fields[4], described[2].split(",")))
    return mounts


def _inside(point, root, own):
    """The folder of group ``own`` in a hierarchy whose ``root`` is mounted at ``point``."""
    relative = own[len(root):] if root != "/" and own.startswith(root) else own
    return Path(point) / relative.lstrip("/")


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def own_folder():
    """The folder of this process's group in the CPU controller's hierarchy, or None."""
    found = _cpu_hierarchy(_read("/proc/self/cgroup"), _read("/proc/self/mountinfo"))
    return found[0] if found else None


def _beside(folder):
    """Where the workers' groups go for a process in group ``folder``: beside it, or beside the
    worker's group it was started in."""
    return folder.parent if folder.name.startswith(PREFIX) else folder


def remove_stale_groups(parent=None):
    """Remove the groups of workers that are gone, beside this process's group (or in ``parent``):
    an empty group only, the kernel refuses others. A worker removes its own group as it exits;
    one that was killed (by its nanny, after a memory overrun, say) cannot, so the coordinator
    does this when its local cluster has closed."""
    if parent is None:
        own = own_folder()
        parent = own and _beside(own)
    for group in Path(parent).glob(PREFIX + "*") if parent else ():
        try:
            os.kill(int(group.name[len(PREFIX):]), 0)
        except ProcessLookupError:
            try:
                group.rmdir()
            except OSError:
                pass
        except (ValueError, PermissionError):
            pass


def _leave(group, parent):
    """Back to the parent group, and remove ours once the processes we started have left it (at
    exit: up to a second; a group that outlives us is removed by the next run)."""
    try:
        (parent / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return
    for _ in range(20):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.05)


def join():
    """Put this process (and so all it starts from now on) in a CPU group of its own, once.

    Returns ``(group folder, "")``, or ``(None, why not)``."""
    if "result" not in _JOINED:
        _JOINED["result"] = _join()
    return _JOINED["result"]


def _join():
    try:
        found = _cpu_hierarchy(_read("/proc/self/cgroup"), _read("/proc/self/mountinfo"))
        if found is None:
            return None, "no CPU controller of control groups is mounted here"
        parent, version = found
        if parent.name == f"{PREFIX}{os.getpid()}":
            return parent, ""
        parent = _beside(parent)  # started by a process that joined a group: a group beside that one
        remove_stale_groups(parent)
        if version == 2 and "cpu" not in _read(parent / "cgroup.subtree_control").split():
            (parent / "cgroup.subtree_control").write_text("+cpu")
        group = parent / f"{PREFIX}{os.getpid()}"
        group.mkdir(exist_ok=True)
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError as error:
        # the same words on every worker (no path, which names the worker), so a run says it once
        return None, f"no CPU group could be made: {error.strerror or error}"
    atexit.register(_leave, group, parent)
    return group, ""


def group_of(pid="self"):
    """The name of the CPU group process ``pid`` is in (the last part of its path), or ""."""
    for line in _read(f"/proc/{pid}/cgroup").splitlines():
        number, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(",") or (controllers == "" and PREFIX in path):
            return path.rsplit("/", 1)[-1]
    return ""
