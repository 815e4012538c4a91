"""Take a Canvas "Download submissions" zip into submitted/<student_id>/pa2_clustering/.

nbgrader's ``zip_collect`` does the work: the zip goes to ``downloaded/pa2_clustering/archive/``,
nbgrader extracts it to ``downloaded/pa2_clustering/extracted/`` and copies each file its
collector plugin accepts into ``submitted/``. The plugin here, ``CanvasCollector``, reads
Canvas's file names, ``<name>_<canvas id>_<attachment id>_<file>`` with ``LATE_`` (or
``late_``) after the name for a late submission, and finds the student_id by the Canvas id in
``roster.csv``. Canvas renames a resubmitted file ``clustering-1.ipynb``, ``clustering-2.ipynb``,
...: the suffix is dropped, and of several copies of one file the newest is kept (the highest
attachment id, which Canvas numbers in upload order, then the highest copy number). The
notebook uploaded as a browser saved it (``clustering (1).ipynb``) or in other capitals
(``Clustering.ipynb``) is the notebook too, and counts as a copy. A student who sent no
notebook of that name is named, since ``make grade`` will find none.
Files it cannot match (another form of name, a Canvas id not on the roster, an older copy) are
reported, not collected.
"""
import argparse
import csv
import os
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from nbgrader.apps import ZipCollectApp
from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Unicode

from . import ASSIGNMENT, NOTEBOOK, ROOT

CANVAS_NAME = (r"^(?P<name>[^_]+)_(?:(?P<late>LATE|late)_)?(?P<canvas_id>\d+)_(?P<submission_id>\d+)_"
               r"(?P<stem>.+?)(?:-(?P<copy>\d+))?(?P<ext>\.[^.]+)$")
#: The suffix a browser adds to a file downloaded again under the same name: ``clustering (1)``.
BROWSER_COPY = r"^(?P<stem>.+?) \((?P<copy>\d+)\)$"


def parse_name(filename):
    """The parts of a Canvas download file name (dict), or None if it is not in that form.

    ``file_id`` is the name the student gave the file, without Canvas's ``-<n>`` suffix; the
    assignment's notebook saved by a browser as ``clustering (1).ipynb``, or as
    ``Clustering.ipynb``, is the notebook (``copy`` counts the browser's copies too).
    """
    match = re.match(CANVAS_NAME, filename)
    if not match:
        return None
    parts = match.groupdict()
    parts["late"] = bool(parts["late"])
    parts["copy"] = int(parts["copy"] or 0)
    parts["file_id"] = parts["stem"] + parts["ext"]
    browser = re.match(BROWSER_COPY, parts["stem"])
    stem, copy = (browser["stem"], int(browser["copy"])) if browser else (parts["stem"], 0)
    if (stem + parts["ext"]).lower() == NOTEBOOK.lower():
        parts["file_id"], parts["copy"] = NOTEBOOK, max(parts["copy"], copy)
    return parts


def plan(filenames, canvas_ids):
    """Decide what to do with each file name of a Canvas download.

    ``canvas_ids`` maps Canvas user id -> student_id. Returns (collect, skipped): collect maps
    file name -> (student_id, file_id, late); skipped maps file name -> why it is left out.
    """
    collect, skipped, newest = {}, {}, defaultdict(list)
    for name in filenames:
        parts = parse_name(name)
        if parts is None:
            skipped[name] = "not a Canvas submission name (<name>_<canvas id>_<attachment id>_<file>)"
        elif parts["canvas_id"] not in canvas_ids:
            skipped[name] = f"Canvas id {parts['canvas_id']} is not in the roster"
        else:
            student_id = canvas_ids[parts["canvas_id"]]
            newest[(student_id, parts["file_id"])].append(((int(parts["submission_id"]), parts["copy"]), name, parts))
    for (student_id, file_id), copies in newest.items():
        copies.sort()
        *older, (_, name, parts) = copies
        collect[name] = (student_id, file_id, parts["late"])
        for _, old, _ in older:
            skipped[old] = f"an older copy of {file_id} of {student_id} (kept {name})"
    return collect, skipped


def canvas_ids(roster_path):
    """Map Canvas user id -> student_id from the roster's ``canvas_id`` column."""
    with open(roster_path, newline="", encoding="utf-8-sig") as handle:
        return {row["canvas_id"].strip(): row["student_id"] for row in csv.DictReader(handle)
                if row.get("canvas_id", "").strip()}


class CanvasCollector(FileNameCollectorPlugin):
    """nbgrader zip_collect plugin for Canvas download names, mapped to student_ids by the roster.

    After the run, ``collected`` maps each file collected -> (student_id, file_id, late) and
    ``skipped`` maps each file left out -> why.
    """
    roster = Unicode("roster.csv", help="CSV with the columns student_id and canvas_id").tag(config=True)
    named_regexp = Unicode(CANVAS_NAME).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.collected, self.skipped, self._plans = {}, {}, {}

    def _plan_for(self, folder):
        if folder not in self._plans:
            names = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)))
            self._plans[folder] = plan(names, canvas_ids(self.roster))
        return self._plans[folder]

    def collect(self, submitted_file):
        folder, name = os.path.split(submitted_file)
        if os.path.splitext(name)[1] not in self.valid_ext:
            self.skipped[submitted_file] = "not a notebook"
            return None
        collect, skipped = self._plan_for(folder)
        if name in skipped:
            self.skipped[submitted_file] = skipped[name]
            return None
        student_id, file_id, late = collect[name]
        self.collected[submitted_file] = (student_id, file_id, late)
        return {"student_id": student_id, "file_id": file_id}


def collect_zip(zip_path, roster_path, root=ROOT):
    """Collect a Canvas zip into ``root/submitted/``; return the CanvasCollector (what was done).

    A student's earlier folder in ``submitted/<student_id>/pa2_clustering/`` is replaced.
    """
    archive = root / "downloaded" / ASSIGNMENT / "archive"
    if archive.exists():
        shutil.rmtree(archive)
    archive.mkdir(parents=True)
    shutil.copy(zip_path, archive / Path(zip_path).name)
    app = ZipCollectApp()
    app.initialize([ASSIGNMENT, "--force", f"--CourseDirectory.root={root}",
                    f"--CanvasCollector.roster={Path(roster_path).resolve()}"])
    app.collector_plugin = CanvasCollector
    app.start()
    return app.collector_plugin_inst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", help="the zip from Canvas: Assignments > the assignment > Download Submissions")
    parser.add_argument("--roster", default=str(ROOT / "roster.csv"), help="default: roster.csv")
    args = parser.parse_args(argv)
    collector = collect_zip(Path(args.zip), Path(args.roster))
    for path, (student_id, file_id, late) in sorted(collector.collected.items()):
        print(f"collected {os.path.basename(path)} -> submitted/{student_id}/{ASSIGNMENT}/{file_id}"
              + (" (late)" if late else ""))
    for path, why in sorted(collector.skipped.items()):
        print(f"not collected: {os.path.basename(path)}: {why}")
    without = sorted({s for s, _, _ in collector.collected.values()}
                     - {s for s, file_id, _ in collector.collected.values() if file_id == NOTEBOOK})
    for student_id in without:
        names = sorted(f for s, f, _ in collector.collected.values() if s == student_id)
        print(f"warning: {student_id} sent no {NOTEBOOK} (only {', '.join(names)}): make grade will report the "
              f"submission failed; if one of them is the assignment, rename it in submitted/{student_id}/{ASSIGNMENT}/")
    with open(args.roster, newline="", encoding="utf-8-sig") as handle:
        roster = [row["student_id"] for row in csv.DictReader(handle)]
    missing = sorted(set(roster) - {s for s, _, _ in collector.collected.values()})
    if missing:
        print(f"on the roster but not in the zip: {', '.join(missing)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
