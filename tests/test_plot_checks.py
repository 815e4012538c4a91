"""The hidden plot checks of Act 8 on small figures, in one kernel: each missing part gets its own
message, and recording the figures changes nothing the student sees."""
import nbformat
import pytest
from nbclient import NotebookClient

from assignment import NOTEBOOK, SOURCE_DIR

PARTS = ("data", "x_label", "y_label", "title", "legend")
DATA = "ks = range(1, 21)\nlosst = [100 / k for k in ks]\nlossv = [110 / k + 1 for k in ks]\n"
LABELS = 'plt.xlabel("k"); plt.ylabel("loss"); plt.title("elbow")\n'
SCENARIOS = {
    "complete": (DATA + 'plt.plot(ks, losst, label="train"); plt.plot(ks, lossv, label="val")\n'
                 + LABELS + "plt.legend(); plt.show()", {}),
    "no_axis_labels": (DATA + 'plt.plot(ks, losst, label="train"); plt.plot(ks, lossv, label="val")\n'
                       'plt.title("elbow"); plt.legend(); plt.show()',
                       {"x_label": "Act 8 plot: expected a label on the x axis, got none",
                        "y_label": "Act 8 plot: expected a label on the y axis, got none"}),
    "unnamed_one_curve": (DATA + "fig, ax = plt.subplots(); ax.plot(ks, losst); ax.legend(['train'])\n"
                          'ax.set(xlabel="k", ylabel="loss", title="elbow")',
                          {"data": "Act 8 plot: expected a curve with the values of lossv, got curves "
                                   "with y values [100. , 50. , ..., 5.26316, 5. ] (ndarray of shape (20,), dtype float64)",
                           "legend": "Act 8 plot: expected a legend naming both curves, got a legend with ['train']"}),
    "no_figure": (DATA, {part: "Act 8 plot: expected a figure shown by the Act 8 cell, got none" for part in PARTS}),
}


@pytest.fixture(scope="module")
def executed():
    """Each scenario between the two locked cells that delimit the Act 8 plot, then the five checks."""
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source
              for c in nbformat.read(SOURCE_DIR / NOTEBOOK, as_version=4).cells}
    first_line = {g: source[g].splitlines()[0] for g in ("act7_scatter_plots", "act8_k1_losses")}
    cells, where = [source["checking_helpers"], source["grader_reference_code"]], {}
    for name, (code, _) in SCENARIOS.items():
        cells += [first_line["act7_scatter_plots"], code, first_line["act8_k1_losses"]]
        where[name] = len(cells) - 2
        for part in PARTS:
            where[name, part] = len(cells)
            cells.append(source[f"act8_plot_{part}"])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    return nb, where


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_missing_part_fails_with_its_own_message(executed, name):
    nb, where = executed
    got = {}
    for part in PARTS:
        errors = [o for o in nb.cells[where[name, part]].outputs if o.output_type == "error"]
        if errors:
            got[part] = f"{errors[0].ename}: {errors[0].evalue}"
    assert got == {part: f"CheckFailed: {message}" for part, message in SCENARIOS[name][1].items()}


def test_recording_leaves_the_shown_figure_as_it_was(executed):
    nb, where = executed
    shown = [o for o in nb.cells[where["complete"]].outputs if o.output_type == "display_data"]
    assert len(shown) == 1 and "image/png" in shown[0].data
    assert shown[0].data["text/plain"].startswith("<Figure size ")


def test_a_wrong_plot_entry_must_fail_exactly_its_listed_cells():
    """The catalogue's '# fails:' line: failing fewer or more cells than listed is reported."""
    from assignment import mutants
    entry = next(e for e in mutants.catalogue() if e.name == "act8_plot_no_axis_labels")
    assert entry.fails == {"act8_plot_x_label", "act8_plot_y_label"}
    message = {g: "CheckFailed: Act 8 plot: expected a label, got none" for g in entry.fails | {"act8_plot_title"}}
    exact = {g: (0, 1) for g in entry.fails}
    assert mutants.Outcome(entry, exact, message).verdict == "ok"
    assert mutants.Outcome(entry, {"act8_plot_x_label": (0, 1)}, message).verdict != "ok"
    assert mutants.Outcome(entry, {**exact, "act8_plot_title": (0, 1)}, message).verdict != "ok"
