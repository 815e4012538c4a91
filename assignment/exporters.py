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

A worker renders one page after another, and most of each page is the same: the release's prose
and code, and the same templates. So the exporter keeps, for its process, the compiled templates
(Jinja's bytecode cache, which checks each template's source) and the HTML of every markdown and
code cell it rendered, keyed by everything that goes into it; a page costs about 0.4 s less.
The same tests check that a page rendered from these memories is the page rendered without them.
"""
import copy
import json
from pathlib import Path

import jinja2
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


class _Memory:
    """What this process rendered, by everything that went into it; all forgotten once keys and
    results pass ``chars`` characters (a class's answers, and images in them, can be large)."""

    def __init__(self, chars=32 * 2**20):
        self.limit, self.chars, self.kept = chars, 0, {}

    def get(self, key, render):
        if key not in self.kept:
            value = render()
            if self.chars + len(key) + len(value) > self.limit:
                self.kept.clear()
                self.chars = 0
            self.kept[key] = value
            self.chars += len(key) + len(value)
        return self.kept[key]


def _key(*parts):
    return json.dumps(parts, sort_keys=True, default=repr)


class _TemplateBytecode(jinja2.BytecodeCache):
    """Compiled templates kept in memory for the process (Jinja checks each template's source)."""

    kept = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.kept:
            bucket.bytecode_from_string(self.kept[bucket.key])

    def dump_bytecode(self, bucket):
        self.kept[bucket.key] = bucket.bytecode_to_string()


class RememberingHighlight(Highlight2HTML):
    """nbconvert's code highlighting, computed once per process for each cell source, language,
    magics language (the only part of the cell's metadata it reads) and formatter options."""

    memory = _Memory()

    def __call__(self, source, language=None, metadata=None):
        magics = (metadata or {}).get("magics_language")
        key = _key(source, language or self.pygments_lexer, magics, self.extra_formatter_options)
        return self.memory.get(key, lambda: super(RememberingHighlight, self).__call__(source, language, metadata))


class FeedbackHTMLExporter(HTMLExporter):
    """``HTMLExporter`` for the feedback template, without the BeautifulSoup pass over the page.

    It finds the course's templates (``template_name = "pa2_feedback"`` in ``nbgrader_config.py``)
    wherever it runs, from the installed package.
    """

    def get_prefix_root_dirs(self):
        """Jupyter's template folders, after the course's (``pa2_feedback``) and nbgrader's (which it extends)."""
        return [str(TEMPLATES), str(NBGRADER_TEMPLATES), *super().get_prefix_root_dirs()]

    markdown_memory = _Memory()

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _TemplateBytecode()
        return environment

    @jinja2.pass_context
    def markdown2html(self, context, source):
        """nbconvert's markdown filter, computed once per process for each source, attachments,
        folder (when images are embedded) and option."""
        cell = context.get("cell", {})
        # the folder matters only to embed images (each submission is rendered in a folder of its own)
        path = context.get("resources", {}).get("metadata", {}).get("path", "") if self.embed_images else None
        key = _key(source, cell.get("attachments", {}), path, self.embed_images, self.anchor_link_text,
                   self.exclude_anchor_links, self.lexer_options)
        return self.markdown_memory.get(key, lambda: super(FeedbackHTMLExporter, self).markdown2html(context, source))

    def from_notebook_node(self, nb, resources=None, **kw):
        nb = copy.deepcopy(nb)
        describe_images(nb)
        # what HTMLExporter.from_notebook_node does before rendering (nbconvert 7.17)
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        self.register_filter("highlight_code",
                             self.filters.get("highlight_code", RememberingHighlight(pygments_lexer=lexer, parent=self)))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type",
                             WidgetsDataTypeFilter(notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)
