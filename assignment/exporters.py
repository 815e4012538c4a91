"""The nbconvert exporter that writes the students' feedback pages.

``nbgrader generate_feedback`` (and ``make grade``, which runs nbgrader's GenerateFeedback on
every worker) renders each graded notebook with nbconvert's ``HTMLExporter`` and nbgrader's
``feedback`` template. After rendering, nbconvert 7 parses the whole page again with
BeautifulSoup for two touch-ups, which take about 40% of the export: an ``alt`` text on images
that have none, and ``tabindex`` on the cells of the JupyterLab templates (the feedback
template, based on the classic one, has none of those). ``FeedbackHTMLExporter`` gives every
image its ``alt`` text before rendering instead, through the output metadata the template
reads, and skips the second parse. ``tests/test_feedback.py`` checks that its pages and
nbconvert's hold the same elements, attributes and text.
"""
import copy
from pathlib import Path

import nbgrader
from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.exporters.html import WidgetsDataTypeFilter
from nbconvert.filters.highlight import Highlight2HTML

#: nbconvert's own text for an image whose output gives no description.
NO_DESCRIPTION = "No description has been provided for this image"
IMAGE_TYPES = ("image/png", "image/jpeg")
#: The course's templates, laid out as Jupyter's share folder (``nbconvert/templates/pa2_feedback``:
#: nbgrader's feedback page with the summary on top), and nbgrader's, which ``pa2_feedback`` extends.
TEMPLATES = Path(__file__).with_name("templates")
NBGRADER_TEMPLATES = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"


def describe_images(nb):
    """Set ``alt`` (nbconvert's default text) on every PNG or JPEG output that has none; in place."""
    for cell in nb.cells:
        if cell.get("metadata", {}).get("alt"):
            continue  # the template falls back to the cell's own description
        for output in cell.get("outputs", []):
            metadata = output.setdefault("metadata", {})
            for mime in IMAGE_TYPES:
                if mime in output.get("data", {}) and not (metadata.get(mime, {}).get("alt") or metadata.get("alt")):
                    metadata.setdefault(mime, {})["alt"] = NO_DESCRIPTION


class FeedbackHTMLExporter(HTMLExporter):
    """``HTMLExporter`` for the feedback template, without the BeautifulSoup pass over the page.

    It finds the course's templates (``template_name = "pa2_feedback"`` in ``nbgrader_config.py``)
    wherever it runs, from the installed package.
    """

    def get_prefix_root_dirs(self):
        """Jupyter's template folders, after the course's (``pa2_feedback``) and nbgrader's (which it extends)."""
        return [str(TEMPLATES), str(NBGRADER_TEMPLATES), *super().get_prefix_root_dirs()]

    def from_notebook_node(self, nb, resources=None, **kw):
        nb = copy.deepcopy(nb)
        describe_images(nb)
        # what HTMLExporter.from_notebook_node does before rendering (nbconvert 7.17)
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type",
                             WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)
