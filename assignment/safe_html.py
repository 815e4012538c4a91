"""A submission's markup made inert on every page that shows it: formgrader's and the feedback's.

A student writes the markdown answers and makes the outputs, so both can carry script: a
``<script>`` or an ``<img onerror>`` in a markdown answer, an HTML or JavaScript output, an event
handler slipped into an image output's width. nbconvert writes all of that into the page as it
is, and formgrader shows the page to a grader who is signed in: the script runs with the
grader's session and could set scores through formgrader's API. nbconvert's own remedy
(``sanitize_html``) is not enough alone: its ``clean_html`` escapes headings, paragraphs and
tables (the instructions become tag soup), and an image's width and height are written
unquoted, where no escaping helps. So ``nbgrader_config.py`` gives every ``HTMLExporter``
(formgrader's, and the feedback's, a subclass):

* ``sanitize_html = True``: HTML and Markdown outputs go through ``clean_html``, and no
  JavaScript output or widget is written; :class:`SafeMarkdown` cleans markdown cells (nbgrader's
  templates render them without ``clean_html``), and :func:`strip_files_prefix` cleans again
  after the one filter those templates apply to markdown afterwards;
* :func:`clean_html` in place of nbconvert's: an allowlist wide enough for the notebook's own
  markdown and code (headings, paragraphs, lists, tables, links, images, highlighted code), and
  nothing that runs: no event-handler attribute, no link but to http(s), mail or the page
  itself, no image but data:image or http(s), no class but code highlighting's (so a
  student's box cannot pass for the rubric), and every id prefixed (so none can stand in for
  one of formgrader's own). Other markup is shown as text, so the grader sees what was tried;
* :class:`InertOutputs`: before rendering, outputs keep only the data a page shows passively,
  with well-formed images, and the metadata the template reads only when it is of the right kind.

The rubric boxes of :class:`assignment.rubric.ShowRubric` are the instructor's and are rendered
as written: ShowRubric names its cells, by identity, in the resources, which no notebook can forge.
"""
import functools
import re

import bleach
import jinja2
from bleach.css_sanitizer import CSSSanitizer
from nbconvert import filters
from nbconvert.preprocessors import Preprocessor
from traitlets.config import LoggingConfigurable

from .intake import is_test_cell

#: resources key: ``id()`` of the cells a preprocessor added for the instructor (rendered as written).
TRUSTED_CELLS = "pa2_trusted_cells"

HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
TAGS = HEADINGS | {
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt",
    "em", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span",
    "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul", "var"}
#: Classes of highlighted code (Pygments' short token names, ``highlight``, ``hl-<language>``) and
#: of markdown headings' anchor links: the only classes kept. The grader's likely-mistake note
#: (``pa2-hint``) keeps its class in the outputs of test cells, which only the grader writes.
SAFE_CLASS = re.compile(r"highlight|hl-[\w-]+|anchor-link|language-[\w+-]+|[a-z]{1,3}\d?")
HINT_CLASS = "pa2-hint"
#: Every id in cleaned markup starts with this, and every link to a place in the page with "#"
#: and this: an id of the student's choosing could otherwise take the place of one of the page's
#: own. Formgrader's script finds each score box and comment by the first element with the
#: grade_id (or grade_id-comment) as id: a heading with a check's grade_id, earlier in the page,
#: made the grader's "Full credit" on an answer give full credit for that failed check too.
ID_PREFIX = "user-content-"
LINK_SCHEMES = ("http:", "https:", "mailto:")
IMAGE_SCHEMES = ("http:", "https:", "data:image/")
SIZE = re.compile(r"\d{1,5}(\.\d{1,3})?(px|%)?")
CSS = CSSSanitizer(allowed_css_properties=["text-align", "vertical-align", "color", "background-color",
                                           "font-weight", "font-style", "text-decoration"])


def _url(value, schemes, relative):
    """Whether ``value`` is a URL of one of ``schemes`` (or, when ``relative``, one with no scheme),
    as it is also after nbconvert's ``strip_files_prefix`` takes ``files/`` off its start."""
    url = re.sub(r"[\x00-\x20]", "", value).lower()
    url = re.sub(r"^(/?files/)+", "", url)
    if url.startswith(schemes):
        return True
    return relative and not re.match(r"[a-z][a-z0-9+.-]*:", url)


def _attribute_allowed(tag, name, value, hint=False):
    """bleach's attribute filter: which attributes of a student's markup are kept (``hint``: also
    the class of the grader's likely-mistake note)."""
    if name == "class":
        return all(SAFE_CLASS.fullmatch(word) or (hint and word == HINT_CLASS) for word in value.split())
    if name == "style":
        return True  # properties outside CSS are dropped by the CSS sanitizer
    if name in ("title", "align"):
        return True
    if tag == "a":
        return name == "href" and _url(value, LINK_SCHEMES, relative=True)
    if tag == "img":
        if name == "src":
            return _url(value, IMAGE_SCHEMES, relative=False)
        return name == "alt" or (name in ("width", "height") and SIZE.fullmatch(value.strip()) is not None)
    if tag in HEADINGS:
        return name == "id"  # the anchors markdown gives headings
    return (name in ("colspan", "rowspan") and tag in ("td", "th")) or (name == "start" and tag == "ol") \
        or (name == "open" and tag == "details")


class _PrefixedIds(bleach.html5lib_shim.Filter):
    """Put :data:`ID_PREFIX` before every id, and after the "#" of every link within the page
    (once: markup cleaned twice keeps one prefix)."""

    def __iter__(self):
        for token in super().__iter__():
            if token["type"] in ("StartTag", "EmptyTag") and token.get("data"):
                attributes = dict(token["data"])
                ids = attributes.get((None, "id"))
                if ids is not None and not ids.startswith(ID_PREFIX):
                    attributes[(None, "id")] = ID_PREFIX + ids
                href = attributes.get((None, "href"))
                if href is not None and href.startswith("#") and not href.startswith("#" + ID_PREFIX):
                    attributes[(None, "href")] = "#" + ID_PREFIX + href[1:]
                token["data"] = attributes
            yield token


def _cleaner(hint):
    return bleach.Cleaner(tags=TAGS, attributes=lambda tag, name, value: _attribute_allowed(tag, name, value, hint),
                          protocols=["http", "https", "mailto", "data"], strip=False, strip_comments=True,
                          css_sanitizer=CSS, filters=[_PrefixedIds])


_CLEANERS = {False: _cleaner(False), True: _cleaner(True)}


#: Cleaned HTML is remembered for texts up to this many characters, 2048 of them: 32 MiB at most.
REMEMBERED_CHARS = 16 * 1024


@functools.lru_cache(maxsize=2048)
def _remembered_clean(text, hint):
    return _CLEANERS[hint].clean(text)


def _clean(text, hint=False):
    return _remembered_clean(text, hint) if len(text) <= REMEMBERED_CHARS else _CLEANERS[hint].clean(text)


@jinja2.pass_context
def clean_html(context, element):
    """The template filter ``clean_html``: ``element`` (HTML text) with only inert markup kept.

    Remembered for the process (a class's pages repeat the same instructions and code); a cell
    that a preprocessor added for the instructor (see :data:`TRUSTED_CELLS`) is returned as is.
    """
    text = element.decode() if isinstance(element, bytes) else str(element)
    cell = context.get("cell")
    if cell is not None and id(cell) in context.get("resources", {}).get(TRUSTED_CELLS, ()):
        return text
    return _clean(text, hint=cell is not None and is_test_cell(cell))


@jinja2.pass_context
def strip_files_prefix(context, text):
    """The template filter ``strip_files_prefix`` (nbconvert's), cleaned again after it.

    nbgrader's templates apply it after ``markdown2html``; it turns ``href="files/x"`` into
    ``href="x"``, so ``files/javascript:...`` would come out as a ``javascript:`` link.
    """
    return clean_html(context, filters.strip_files_prefix(text))


class SafeMarkdown(LoggingConfigurable):
    """The template filter ``markdown2html``: the exporter's own, then :func:`clean_html`.

    nbgrader's formgrade and feedback templates render markdown cells without ``clean_html``, so
    the cleaning is done here, where every markdown cell (and grader's comment) of either page
    is rendered. nbconvert makes one per exporter (its ``parent``).
    """

    #: Jinja hands the filter the template's context, as for a function decorated with pass_context.
    jinja_pass_arg = jinja2.pass_context(lambda: None).jinja_pass_arg

    def __call__(self, context, source):
        return clean_html(context, self.parent.markdown2html(context, source))


#: Output data a page may show; anything else (JavaScript, widgets, unknown types) is dropped.
SHOWN_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/png", "image/jpeg", "image/svg+xml")
BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


#: What the template reads from an output's metadata (for the output, or for one image type) and
#: writes into the page: checked by :func:`inert_metadata`.
READ_BY_TEMPLATE = ("width", "height", "alt", "unconfined", "filenames")


def _checked(entries):
    """``entries`` without the keys of :data:`READ_BY_TEMPLATE` whose value is of the wrong kind
    (a width that is not a size, say); ``filenames`` (links to files beside the page) always goes."""
    kept = {key: value for key, value in entries.items() if key not in READ_BY_TEMPLATE}
    for key in ("width", "height"):
        value = entries.get(key)
        if (isinstance(value, (int, float)) and not isinstance(value, bool)) or \
                (isinstance(value, str) and SIZE.fullmatch(value.strip())):
            kept[key] = value
    if isinstance(entries.get("alt"), str):
        kept["alt"] = entries["alt"]
    if isinstance(entries.get("unconfined"), bool):
        kept["unconfined"] = entries["unconfined"]
    return kept


def inert_metadata(metadata):
    """An output's metadata with what the template reads checked, for the output and for each
    image type; other keys (the grader's own marks, say) are kept as they are."""
    kept = _checked(metadata)
    for mime in ("image/png", "image/jpeg"):
        if mime in kept:
            kept[mime] = _checked(kept[mime]) if isinstance(kept[mime], dict) else {}
    return kept


class InertOutputs(Preprocessor):
    """Keep of each output only what a page shows without running anything: the data types of
    :data:`SHOWN_TYPES` (PNG and JPEG only when they are base64), and checked image metadata; an
    output with nothing left goes. Notebook-level widget state is dropped too."""

    def preprocess(self, nb, resources):
        nb.metadata.pop("widgets", None)
        for cell in nb.cells:
            if "outputs" not in cell:
                continue
            kept = []
            for output in cell.outputs:
                if "data" in output:  # (streams and errors are shown as escaped text)
                    data = output["data"]
                    for mime in list(data):
                        value = data[mime]
                        if mime not in SHOWN_TYPES or (mime in ("image/png", "image/jpeg")
                                                       and not (isinstance(value, str) and BASE64.fullmatch(value))):
                            del data[mime]
                    if not data:
                        continue  # nothing left to show
                    output["metadata"] = inert_metadata(output.get("metadata", {}))
                kept.append(output)
            cell.outputs = kept
        return nb, resources
